package tsm_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
)

// TestSNPRoundTrip runs the whole attester-to-verifier path for every key type
// a kc may name: kc → D → simulated SEV-SNP report over D → bundle → parse →
// appraisal under the simulator's roots.
func TestSNPRoundTrip(t *testing.T) {
	guest := sim.SNPOptions{
		Measurement: bytes.Repeat([]byte{0x4d}, abi.MeasurementSize),
		HostData:    bytes.Repeat([]byte{0x48}, abi.HostDataSize),
		ReportID:    bytes.Repeat([]byte{0x52}, abi.ReportIDSize),
		ReportedTCB: tcb(t, kds.TCBParts{BlSpl: 3, TeeSpl: 0, SnpSpl: 14, UcodeSpl: 209}),
		Policy:      abi.SnpPolicy{SMT: true, ABIMajor: 1, ABIMinor: 51},
	}
	s := newSNP(t, guest)
	v := tsm.NewVerifier(tsm.Options{SNP: snpVerifier(t, testRoots(t))})
	nonce := bytes.Repeat([]byte{0x4e}, evidence.NonceSize)

	for name, key := range testKeys(t) {
		t.Run(name, func(t *testing.T) {
			kc, err := evidence.NewKC(key.Public(), nonce, testNow())
			if err != nil {
				t.Fatal(err)
			}
			d := evidence.Binding(s.BindingHash(), kc)
			ev, err := s.Attest(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := evidence.Bundle{KC: kc, Platform: ev}.Marshal()
			if err != nil {
				t.Fatal(err)
			}

			// The verifier's side: only the bundle bytes.
			b, err := evidence.ParseBundle(raw)
			if err != nil {
				t.Fatal(err)
			}
			h, err := evidence.BindingHashFor(b.Platform.MediaType)
			if err != nil {
				t.Fatal(err)
			}
			if h != crypto.SHA512 || s.BindingHash() != crypto.SHA512 {
				t.Fatalf("binding hash is %v (attester %v), want SHA-512", h, s.BindingHash())
			}
			claims, err := v.Appraise(b.Platform.Data, evidence.Binding(h, b.KC))
			if err != nil {
				t.Fatal(err)
			}
			if claims.Provider != tsm.ProviderSNP || claims.SNP == nil || claims.TDX != nil {
				t.Fatalf("claims = %+v, want sev_guest claims only", claims)
			}
			c := claims.SNP
			if !bytes.Equal(c.ReportData, d) {
				t.Errorf("REPORT_DATA = %x, want D = %x", c.ReportData, d)
			}
			if !bytes.Equal(c.Measurement, guest.Measurement) || !bytes.Equal(c.HostData, guest.HostData) || !bytes.Equal(c.ReportID, guest.ReportID) {
				t.Errorf("measurement, host data or report ID changed: %+v", c)
			}
			if c.ReportedTCB.Raw != guest.ReportedTCB || c.ReportedTCB.SNP != 14 || c.ReportedTCB.Microcode != 209 || c.ReportedTCB.BootLoader != 3 {
				t.Errorf("reported TCB = %+v, want %#x decoded", c.ReportedTCB, guest.ReportedTCB)
			}
			if c.CurrentTCB != c.ReportedTCB {
				t.Errorf("current TCB = %+v, want %+v", c.CurrentTCB, c.ReportedTCB)
			}
			if c.Policy.Debug || !c.Policy.SMT || c.Policy.ABIMajor != 1 || c.Policy.ABIMinor != 51 || c.Policy.Raw != abi.SnpPolicyToBytes(guest.Policy) {
				t.Errorf("policy = %+v, want %+v", c.Policy, guest.Policy)
			}
			if c.Version != 3 || c.VMPL != 0 || c.SigningKey != "VCEK" || c.ProductLine != sim.SNPProductLine || len(c.ChipID) != abi.ChipIDSize {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}

// TestSNPClaimsDescribeTheGuest shows that each fact the simulator is told
// about a guest comes out of appraisal, so the verifier's policy can tell good
// guests from bad ones.
func TestSNPClaimsDescribeTheGuest(t *testing.T) {
	v := snpVerifier(t, testRoots(t))
	chip := bytes.Repeat([]byte{0xc1}, abi.ChipIDSize)
	for _, tc := range []struct {
		name  string
		guest sim.SNPOptions
		check func(*tsm.SNPClaims) bool
	}{
		{"debug policy", sim.SNPOptions{Policy: abi.SnpPolicy{Debug: true}}, func(c *tsm.SNPClaims) bool { return c.Policy.Debug }},
		{"no debug", sim.SNPOptions{}, func(c *tsm.SNPClaims) bool { return !c.Policy.Debug }},
		{"migration agent", sim.SNPOptions{Policy: abi.SnpPolicy{MigrateMA: true}}, func(c *tsm.SNPClaims) bool { return c.Policy.MigrateMA && !c.Policy.SMT }},
		{"VMPL 2", sim.SNPOptions{VMPL: 2}, func(c *tsm.SNPClaims) bool { return c.VMPL == 2 }},
		{"chip ID", sim.SNPOptions{ChipID: chip}, func(c *tsm.SNPClaims) bool { return bytes.Equal(c.ChipID, chip) }},
		{"guest SVN", sim.SNPOptions{GuestSVN: 9}, func(c *tsm.SNPClaims) bool { return c.GuestSVN == 9 }},
		{"current TCB above reported", sim.SNPOptions{ReportedTCB: 0x0100000000000001, CurrentTCB: 0x0200000000000002}, func(c *tsm.SNPClaims) bool {
			return c.ReportedTCB.Raw == 0x0100000000000001 && c.CurrentTCB.Raw == 0x0200000000000002 && c.CommittedTCB == c.CurrentTCB && c.LaunchTCB == c.CurrentTCB
		}},
		{"version 2 report", sim.SNPOptions{Version: 2}, func(c *tsm.SNPClaims) bool { return c.Version == 2 && c.ProductLine == sim.SNPProductLine }},
		{"version 5 report", sim.SNPOptions{Version: 5}, func(c *tsm.SNPClaims) bool { return c.Version == 5 }},
		{"signed by a VLEK", sim.SNPOptions{VLEK: true}, func(c *tsm.SNPClaims) bool { return c.SigningKey == "VLEK" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testD(0x11)
			r := parseReport(t, attest(t, newSNP(t, tc.guest), d))
			c, err := v.Appraise(r.OutBlob, r.AuxBlob, d)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("claims do not describe the guest %+v: %+v", tc.guest, c)
			}
		})
	}
}

// TestSNPRejects has one case per reason appraisal refuses a report; each
// asserts that the error names the reason.
func TestSNPRejects(t *testing.T) {
	roots := testRoots(t)
	v := snpVerifier(t, roots)
	good := newSNP(t, sim.SNPOptions{})
	d := testD(0x22)
	goodReport := parseReport(t, attest(t, good, d))

	freshKeys, err := sim.NewSNPKeys()
	if err != nil {
		t.Fatal(err)
	}
	amdOnly, err := tsm.NewSNPVerifier(tsm.SNPOptions{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	amd, err := tsm.AMDSNPRoots()
	if err != nil {
		t.Fatal(err)
	}
	genoaOnly, err := tsm.NewSNPVerifier(tsm.SNPOptions{Roots: amd[1:2], Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	later, err := tsm.NewSNPVerifier(tsm.SNPOptions{Roots: roots, Now: func() time.Time { return time.Date(2060, 1, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	// Two guests on the same keys but at other TCB or chip: their reports
	// verify under their own certificate tables, not under each other's.
	otherTCB := parseReport(t, attest(t, newSNP(t, sim.SNPOptions{ReportedTCB: 0x0300000000000007}), d))
	otherChip := parseReport(t, attest(t, newSNP(t, sim.SNPOptions{ChipID: bytes.Repeat([]byte{9}, abi.ChipIDSize)}), d))
	vlek := parseReport(t, attest(t, newSNP(t, sim.SNPOptions{VLEK: true}), d))

	tampered := bytes.Clone(goodReport.OutBlob)
	tampered[0x90] ^= 1 // first byte of MEASUREMENT

	onlyRoots := certTable(t, goodReport.AuxBlob, abi.VcekGUID)

	for _, tc := range []struct {
		name             string
		v                *tsm.SNPVerifier
		outblob, auxblob []byte
		d                []byte
		wantErr          string
	}{
		{"REPORT_DATA is not D", v, goodReport.OutBlob, goodReport.AuxBlob, testD(0x23),
			"REPORT_DATA is " + hex.EncodeToString(d) + ", want D = " + hex.EncodeToString(testD(0x23))},
		{"D of the wrong size", v, goodReport.OutBlob, goodReport.AuxBlob, d[:32], "D is 32 bytes, want 64"},
		{"signed under a root that is not trusted (wrong root)", v,
			nil, nil, d, "VCEK could not be verified by any trusted roots"},
		{"simulated report under AMD's production roots", amdOnly, goodReport.OutBlob, goodReport.AuxBlob, d,
			"VCEK could not be verified by any trusted roots"},
		{"no roots for the report's product line", genoaOnly, goodReport.OutBlob, goodReport.AuxBlob, d,
			"no trusted roots for product line Milan"},
		{"tampered report", v, tampered, goodReport.AuxBlob, d, "report signature verification error"},
		{"certificates expired at appraisal time", later, goodReport.OutBlob, goodReport.AuxBlob, d, "certificate has expired"},
		{"report version 1", v, nil, nil, d, "report version 1, want 2 or later"},
		{"no auxblob", v, goodReport.OutBlob, nil, d, "no VCEK in auxblob (offline appraisal)"},
		{"auxblob without the VCEK", v, goodReport.OutBlob, onlyRoots, d, "no VCEK in auxblob (offline appraisal)"},
		{"VLEK report without auxblob", v, vlek.OutBlob, nil, d, "no VLEK in auxblob (offline appraisal)"},
		{"VCEK certified for another TCB", v, otherTCB.OutBlob, goodReport.AuxBlob, d,
			"REPORTED_TCB 0x300000000000007 does not match the TCB of the V[CL]EK certificate 0x0"},
		{"CHIP_ID is not the VCEK's HWID", v, otherChip.OutBlob, goodReport.AuxBlob, d, "is not the same as the VCEK certificate's HWID"},
		{"outblob is not a report", v, []byte("not a report"), goodReport.AuxBlob, d, "outblob is 12 bytes, want 1184"},
		{"malformed certificate table", v, goodReport.OutBlob, goodReport.AuxBlob[:30], d, "auxblob certificate table"},
		{"certificate table entry past its end", v, goodReport.OutBlob, tableEntryPastEnd(goodReport.AuxBlob), d, "past the end of the"},
		{"certificate table with a GUID twice", v, goodReport.OutBlob, certTable(t, goodReport.AuxBlob, "", abi.VcekGUID), d, "has GUID " + abi.VcekGUID + " twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, aux := tc.outblob, tc.auxblob
			switch tc.name {
			case "signed under a root that is not trusted (wrong root)":
				r := parseReport(t, attest(t, newSNP(t, sim.SNPOptions{Keys: freshKeys}), d))
				out, aux = r.OutBlob, r.AuxBlob
			case "report version 1":
				r := parseReport(t, attest(t, newSNP(t, sim.SNPOptions{Version: 1}), d))
				out, aux = r.OutBlob, r.AuxBlob
			}
			c, err := tc.v.Appraise(out, aux, tc.d)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Appraise() = %+v, %v; want an error containing %q", c, err, tc.wantErr)
			}
			t.Log(err)
			if !strings.HasPrefix(err.Error(), "sev-snp: ") {
				t.Errorf("error %q does not say it is about SEV-SNP", err)
			}
		})
	}
}

// TestSNPFreshKeysVerifyUnderTheirOwnRoots shows that the "wrong root" case
// fails for the root alone: the same platform verifies once its roots are
// trusted.
func TestSNPFreshKeysVerifyUnderTheirOwnRoots(t *testing.T) {
	keys, err := sim.NewSNPKeys()
	if err != nil {
		t.Fatal(err)
	}
	s := newSNP(t, sim.SNPOptions{Keys: keys})
	d := testD(0x33)
	r := parseReport(t, attest(t, s, d))
	if _, err := snpVerifier(t, s.Roots()).Appraise(r.OutBlob, r.AuxBlob, d); err != nil {
		t.Fatal(err)
	}
	if _, err := snpVerifier(t, testRoots(t)).Appraise(r.OutBlob, r.AuxBlob, d); err == nil {
		t.Fatal("a platform on fresh keys verified under the test roots")
	}
}

func TestNewSNPVerifierRejectsIncompleteRoots(t *testing.T) {
	root := testRoots(t)[0]
	for _, tc := range []struct {
		name    string
		root    tsm.SNPRoot
		wantErr string
	}{
		{"unknown product line", tsm.SNPRoot{ProductLine: "Naples", ARK: root.ARK, ASK: root.ASK}, `unknown AMD SEV product: "Naples"`},
		{"no ARK", tsm.SNPRoot{ProductLine: root.ProductLine, ASK: root.ASK}, "needs an ARK and an ASK or ASVK"},
		{"no intermediate", tsm.SNPRoot{ProductLine: root.ProductLine, ARK: root.ARK}, "needs an ARK and an ASK or ASVK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tsm.NewSNPVerifier(tsm.SNPOptions{Roots: []tsm.SNPRoot{tc.root}})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewSNPVerifier() error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestSNPTCBAtLeast(t *testing.T) {
	base := tsm.NewSNPTCB(tcb(t, kds.TCBParts{BlSpl: 3, TeeSpl: 0, SnpSpl: 8, UcodeSpl: 115}))
	for _, tc := range []struct {
		name  string
		floor kds.TCBParts
		want  bool
	}{
		{"equal", kds.TCBParts{BlSpl: 3, TeeSpl: 0, SnpSpl: 8, UcodeSpl: 115}, true},
		{"every part lower", kds.TCBParts{BlSpl: 2, SnpSpl: 7, UcodeSpl: 100}, true},
		{"SNP firmware higher", kds.TCBParts{BlSpl: 3, SnpSpl: 9, UcodeSpl: 115}, false},
		{"microcode higher, rest lower", kds.TCBParts{BlSpl: 1, SnpSpl: 1, UcodeSpl: 116}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := base.AtLeast(tsm.NewSNPTCB(tcb(t, tc.floor))); got != tc.want {
				t.Fatalf("%+v.AtLeast(%+v) = %v, want %v", base, tc.floor, got, tc.want)
			}
		})
	}
}

// tcb composes a TCB_VERSION.
func tcb(t testing.TB, p kds.TCBParts) uint64 {
	t.Helper()
	v, err := kds.ComposeTCBParts(p)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(v)
}

// certTable re-encodes the certificate table aux without the entries of drop,
// and with the entries of dup a second time.
func certTable(t testing.TB, aux []byte, drop string, dup ...string) []byte {
	t.Helper()
	var table abi.CertTable
	if err := table.Unmarshal(aux); err != nil {
		t.Fatal(err)
	}
	var out abi.CertTable
	for _, e := range table.Entries {
		if e.GUID.String() != drop {
			out.Entries = append(out.Entries, e)
		}
		for _, g := range dup {
			if e.GUID.String() == g {
				out.Entries = append(out.Entries, e)
			}
		}
	}
	return out.Marshal()
}

// tableEntryPastEnd returns aux with its first entry's offset set so that
// offset + length overflows 32 bits.
func tableEntryPastEnd(aux []byte) []byte {
	out := bytes.Clone(aux)
	var h abi.CertTableHeaderEntry
	_ = h.Unmarshal(out)
	h.Offset = 0xffffffff - h.Length + 2
	_ = h.Write(out)
	return out
}
