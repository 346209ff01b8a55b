package verifier

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/google/go-sev-guest/abi"
	"github.com/veraison/ear"
)

func TestAppraiseSNPOutcomes(t *testing.T) {
	f := newFixture(t, nil)
	const ka = "token.thumbprint"
	cases := []struct {
		name     string
		mod      func(*sim.SNPOptions)
		status   ear.TrustTier
		workload string
		reason   string
	}{
		{"match", nil, ear.TrustTierAffirming, "snp-web", ""},
		{"no workload matched", func(o *sim.SNPOptions) { o.Measurement = make([]byte, 48) }, ear.TrustTierContraindicated, "", "no workload matched MEASUREMENT 0000"},
		{"host data differs", func(o *sim.SNPOptions) { o.HostData = make([]byte, 32) }, ear.TrustTierContraindicated, "", "no workload matched"},
		{"debug guest", func(o *sim.SNPOptions) { o.Policy = abi.SnpPolicy{Debug: true, SMT: true} }, ear.TrustTierContraindicated, "snp-web", "allows debugging"},
		{"TCB below minimum", func(o *sim.SNPOptions) { o.ReportedTCB = tcbRaw(3, 0, 4, 115) }, ear.TrustTierContraindicated, "snp-web", "below the minimum"},
		{"VMPL 2", func(o *sim.SNPOptions) { o.VMPL = 2 }, ear.TrustTierContraindicated, "snp-web", "VMPL 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ans, key := answer(t, goodSNP(t, c.mod), ka, f.now)
			r := f.appraise(t, ans.Bundle, nonceOf(ka))
			if r.Platform != PlatformSEVSNP || r.Status != c.status || r.Workload != c.workload || !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("EAR = %s %s workload %q reason %q; want %s workload %q reason containing %q",
					r.Platform, r.Status, r.Workload, r.Reason, c.status, c.workload, c.reason)
			}
			if c.status == ear.TrustTierAffirming {
				if !keysEqual(r.Key, key.Public()) {
					t.Fatal("affirming EAR does not carry the kc's key")
				}
				if r.TrustVector.InstanceIdentity != ear.TrustworthyInstanceClaim || r.TrustVector.Executables != ear.ApprovedRuntimeClaim ||
					r.TrustVector.Configuration != ear.ApprovedConfigClaim || r.TrustVector.Hardware != ear.GenuineHardwareClaim {
					t.Fatalf("trust vector %+v does not say what was checked", r.TrustVector)
				}
			} else if r.Key != nil {
				t.Fatal("a contraindicated EAR names a key")
			}
		})
	}
}

func TestAppraiseRejectsEvidence(t *testing.T) {
	f := newFixture(t, nil)
	const ka = "token.thumbprint"
	good, _ := answer(t, goodSNP(t, nil), ka, f.now)
	other, _ := answer(t, goodSNP(t, nil), ka, f.now)
	fresh, err := sim.NewSNPKeys()
	if err != nil {
		t.Fatal(err)
	}
	untrusted, _ := answer(t, goodSNP(t, func(o *sim.SNPOptions) { o.Keys = fresh }), ka, f.now)
	swapped, err := (evidence.Bundle{KC: other.KC, Platform: good.Evidence}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		bundle []byte
		nonce  []byte
		reason string
	}{
		{"wrong nonce", good.Bundle, nonceOf("other.thumbprint"), "does not match the challenge's nonce"},
		{"kc changed after attesting", swapped, nonceOf(ka), "REPORT_DATA"},
		{"untrusted chain", untrusted.Bundle, nonceOf(ka), "sev-snp"},
		{"garbage", []byte{0xa0}, nonceOf(ka), "bundle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.appraise(t, c.bundle, c.nonce)
			if r.Status != ear.TrustTierContraindicated || !strings.Contains(r.Reason, c.reason) || r.Key != nil {
				t.Fatalf("EAR = %s reason %q key %v; want contraindicated, no key, reason containing %q", r.Status, r.Reason, r.Key, c.reason)
			}
			if r.TrustVector.InstanceIdentity != ear.CryptoValidationFailedClaim {
				t.Fatalf("trust vector %+v should say crypto validation failed", r.TrustVector)
			}
		})
	}
}

func TestAppraiseKCFreshness(t *testing.T) {
	f := newFixture(t, nil)
	const ka = "token.thumbprint"
	for _, c := range []struct {
		name   string
		iat    time.Time
		reason string
	}{
		{"stale iat", f.now.Add(-evidence.MaxKCAge - time.Minute), "old"},
		{"future iat", f.now.Add(evidence.MaxKCFutureSkew + time.Minute), "future"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ans, _ := answer(t, goodSNP(t, nil), ka, c.iat)
			r := f.appraise(t, ans.Bundle, nonceOf(ka))
			if r.Status != ear.TrustTierContraindicated || !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("EAR = %s %q, want contraindicated %q", r.Status, r.Reason, c.reason)
			}
		})
	}
}

func TestAppraiseTDX(t *testing.T) {
	f := newFixture(t, nil)
	const ka = "token.thumbprint"
	for _, c := range []struct {
		name   string
		opts   sim.TDXOptions
		status ear.TrustTier
		reason string
	}{
		{"match", sim.TDXOptions{}, ear.TrustTierAffirming, ""},
		{"debug TD", sim.TDXOptions{Debug: true}, ear.TrustTierContraindicated, "DEBUG attribute"},
		{"other MRTD", sim.TDXOptions{MRTD: make([]byte, 48)}, ear.TrustTierContraindicated, "no workload matched MRTD"},
	} {
		t.Run(c.name, func(t *testing.T) {
			td, err := sim.NewTDX(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			ans, _ := answer(t, td, ka, f.now)
			r := f.appraise(t, ans.Bundle, nonceOf(ka))
			if r.Platform != PlatformTDX || r.Status != c.status || !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("EAR = %s %s %q, want %s %q", r.Platform, r.Status, r.Reason, c.status, c.reason)
			}
		})
	}
}

func TestAppraiseTPM(t *testing.T) {
	tp, err := tpm.OpenSimulator()
	if err != nil {
		t.Skipf("TPM simulator: %v", err)
	}
	defer tp.Close()
	att, err := tpm.NewAttester(tp, tpm.Config{PCRs: tpm.PCRSelection{tpm.BankSHA256: {0, 1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	const ka = "token.thumbprint"

	t.Run("match", func(t *testing.T) {
		f := newFixture(t, pemPublic(t, att.AKPublic()))
		ans, key := answer(t, att, ka, f.now)
		r := f.appraise(t, ans.Bundle, nonceOf(ka))
		if r.Status != ear.TrustTierAffirming || r.Workload != "tpm-web" || !keysEqual(r.Key, key.Public()) {
			t.Fatalf("EAR = %s workload %q reason %q", r.Status, r.Workload, r.Reason)
		}
		if r.TrustVector.Hardware != ear.NoClaim {
			t.Fatal("a pinned AK must not claim genuine hardware")
		}
	})
	t.Run("unknown AK", func(t *testing.T) {
		f := newFixture(t, pemPublic(t, mustKey(t)))
		ans, _ := answer(t, att, ka, f.now)
		r := f.appraise(t, ans.Bundle, nonceOf(ka))
		if r.Status != ear.TrustTierContraindicated || !strings.Contains(r.Reason, "AK") {
			t.Fatalf("EAR = %s %q, want contraindicated naming the AK", r.Status, r.Reason)
		}
	})
	t.Run("no AK trusted", func(t *testing.T) {
		f := newFixture(t, nil)
		ans, _ := answer(t, att, ka, f.now)
		r := f.appraise(t, ans.Bundle, nonceOf(ka))
		if r.Status != ear.TrustTierContraindicated || !strings.Contains(r.Reason, "trusts no attestation key") {
			t.Fatalf("EAR = %s %q", r.Status, r.Reason)
		}
	})
}

func TestAppraiseBareEvidence(t *testing.T) {
	f := newFixture(t, nil)
	s := goodSNP(t, nil)
	d := make([]byte, 64)
	d[0] = 7
	ev, err := s.Attest(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.app.Appraise(context.Background(), ev, d)
	if err != nil {
		t.Fatal(err)
	}
	r := decodeEAR(t, f, tok, d)
	if r.Status != ear.TrustTierAffirming || r.Key != nil {
		t.Fatalf("bare evidence EAR = %s key %v; want affirming without a key", r.Status, r.Key)
	}
	if _, err := f.app.Appraise(context.Background(), evidence.Evidence{MediaType: "text/plain", Data: []byte("x")}, d); !IsRejected(err) {
		t.Fatalf("unknown media type: %v, want RejectedError", err)
	}
	if _, err := f.app.Appraise(context.Background(), ev, []byte{1}); !IsRejected(err) {
		t.Fatalf("one-byte nonce: %v, want RejectedError", err)
	}
}
