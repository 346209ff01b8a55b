package tsm_test

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"strings"
	"testing"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tsm"
)

// tdxLike starts like a TDX quote (version 4, ECDSA-256 key, TEE type 0x81).
func tdxLike() []byte {
	q := make([]byte, 1024)
	copy(q, []byte{4, 0, 2, 0, 0x81, 0, 0, 0})
	return q
}

// ccaLike starts like an Arm CCA token (CBOR tag 399).
func ccaLike() []byte { return []byte{0xd9, 0x01, 0x8f, 0xa2, 0x00, 0x00} }

func TestVerifierRejects(t *testing.T) {
	d := testD(0x44)
	s := newSNP(t, sim.SNPOptions{})
	snpReport := parseReport(t, attest(t, s, d))
	full := tsm.NewVerifier(tsm.Options{SNP: snpVerifier(t, testRoots(t)), TDX: &tsm.TDXVerifier{}})
	noSNP := tsm.NewVerifier(tsm.Options{TDX: &tsm.TDXVerifier{}})
	noTDX := tsm.NewVerifier(tsm.Options{SNP: snpVerifier(t, testRoots(t))})

	for _, tc := range []struct {
		name     string
		v        *tsm.Verifier
		evidence []byte
		wantErr  string
	}{
		{"provider tdx_guest with an SEV-SNP report", full,
			marshal(t, &tsm.Report{Provider: tsm.ProviderTDX, OutBlob: snpReport.OutBlob, AuxBlob: snpReport.AuxBlob}),
			"tsm: provider is tdx_guest but the outblob is SEV-SNP attestation report evidence"},
		{"provider arm_cca_guest with an SEV-SNP report", full,
			marshal(t, &tsm.Report{Provider: tsm.ProviderCCA, OutBlob: snpReport.OutBlob}),
			"tsm: provider is arm_cca_guest but the outblob is SEV-SNP attestation report evidence"},
		{"provider sev_guest with a TDX quote", full,
			marshal(t, &tsm.Report{Provider: tsm.ProviderSNP, OutBlob: tdxLike()}),
			"tsm: provider is sev_guest but the outblob is TDX quote evidence"},
		{"provider sev_guest with a CCA token", full,
			marshal(t, &tsm.Report{Provider: tsm.ProviderSNP, OutBlob: ccaLike()}),
			"tsm: provider is sev_guest but the outblob is Arm CCA token evidence"},
		{"provider sev_guest with an unrecognisable outblob", full,
			marshal(t, &tsm.Report{Provider: tsm.ProviderSNP, OutBlob: []byte("garbage")}),
			"sev-snp: outblob is 7 bytes, want 1184"},
		{"arm_cca_guest has no appraiser", full,
			marshal(t, &tsm.Report{Provider: tsm.ProviderCCA, OutBlob: ccaLike()}),
			"no appraiser for arm_cca_guest configured"},
		{"nil SNP verifier", noSNP, attest(t, s, d), "tsm: no appraiser for sev_guest configured"},
		{"nil TDX verifier", noTDX,
			marshal(t, &tsm.Report{Provider: tsm.ProviderTDX, OutBlob: tdxLike()}),
			"tsm: no appraiser for tdx_guest configured"},
		{"unknown provider", full, cborReport(t, "sgx_guest", snpReport.OutBlob), `provider "sgx_guest" is not one of`},
		{"truncated report map", full, attest(t, s, d)[:100], "tsm report: malformed CBOR: unexpected EOF"},
		{"oversized report map", full, make([]byte, evidence.MaxItemSize+1), "tsm report: 32769 bytes, over the limit"},
		{"SNP appraisal failure passes through", full, attest(t, s, testD(0x45)), "sev-snp: REPORT_DATA is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.v.Appraise(tc.evidence, d)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Appraise() = %+v, %v; want an error containing %q", c, err, tc.wantErr)
			}
			t.Log(err)
		})
	}
}

// TestVerifierKCChangedAfterAttesting shows the binding: a bundle whose kc was
// replaced after the platform attested fails, because D = SHA-512(kc) is no
// longer what REPORT_DATA holds.
func TestVerifierKCChangedAfterAttesting(t *testing.T) {
	s := newSNP(t, sim.SNPOptions{})
	v := tsm.NewVerifier(tsm.Options{SNP: snpVerifier(t, testRoots(t))})
	key := testKeys(t)["ec-p256"]
	kc, err := evidence.NewKC(key.Public(), bytes.Repeat([]byte{1}, evidence.NonceSize), testNow())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.Attest(context.Background(), evidence.Binding(crypto.SHA512, kc))
	if err != nil {
		t.Fatal(err)
	}
	other := testKeys(t)["ec-p384"]
	kc2, err := evidence.NewKC(other.Public(), bytes.Repeat([]byte{1}, evidence.NonceSize), testNow())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := evidence.Bundle{KC: kc2, Platform: ev}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, err := evidence.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Appraise(b.Platform.Data, evidence.Binding(crypto.SHA512, b.KC))
	if err == nil || !strings.Contains(err.Error(), "sev-snp: REPORT_DATA is") {
		t.Fatalf("Appraise() error = %v, want a REPORT_DATA mismatch", err)
	}
	// The original kc still verifies: only the substitution is refused.
	if _, err := v.Appraise(b.Platform.Data, evidence.Binding(crypto.SHA512, kc)); err != nil {
		t.Fatal(err)
	}
}

// TestVerifierConcurrentAppraisals runs appraisals of one verifier in parallel
// (meaningful under -race).
func TestVerifierConcurrentAppraisals(t *testing.T) {
	s := newSNP(t, sim.SNPOptions{})
	v := tsm.NewVerifier(tsm.Options{SNP: snpVerifier(t, testRoots(t))})
	for i := range 4 {
		t.Run(fmt.Sprintf("appraisal %d", i), func(t *testing.T) {
			t.Parallel()
			d := testD(byte(0x50 + i))
			ev := attest(t, s, d)
			if _, err := v.Appraise(ev, d); err != nil {
				t.Error(err)
			}
		})
	}
}

// cborReport encodes a report map with any provider, bypassing Marshal's checks.
func cborReport(t testing.TB, provider string, outblob []byte) []byte {
	t.Helper()
	b, err := evidence.DetEncMode().Marshal(map[string]any{"provider": provider, "outblob": outblob})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
