package tsm_test

import (
	"bytes"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/google/go-sev-guest/verify/trust"
)

func TestAMDSNPRoots(t *testing.T) {
	roots, err := tsm.AMDSNPRoots()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range roots {
		lines = append(lines, r.ProductLine)
		if r.ARK == nil || r.ASK == nil || r.ASVK == nil {
			t.Errorf("%s: ARK %v, ASK %v, ASVK %v; want all three", r.ProductLine, r.ARK != nil, r.ASK != nil, r.ASVK != nil)
		}
		if r.ARK.Subject.CommonName != "ARK-"+r.ProductLine {
			t.Errorf("%s: ARK is %q", r.ProductLine, r.ARK.Subject.CommonName)
		}
	}
	if got := strings.Join(lines, ","); got != "Milan,Genoa,Turin" {
		t.Fatalf("product lines %s, want Milan,Genoa,Turin", got)
	}
}

func TestParseSNPRootRoundTrip(t *testing.T) {
	want := testRoots(t)[0]
	got, err := tsm.ParseSNPRoot(want.PEM())
	if err != nil {
		t.Fatal(err)
	}
	if got.ProductLine != want.ProductLine || !got.ARK.Equal(want.ARK) || !got.ASK.Equal(want.ASK) || !got.ASVK.Equal(want.ASVK) {
		t.Fatalf("ParseSNPRoot(PEM()) = %+v, want %+v", got, want)
	}
	// AMD's KDS cert_chain files, VCEK and VLEK concatenated, parse too.
	amd, err := tsm.ParseSNPRoot(append(bytes.Clone(trust.AskArkGenoaVcekBytes), trust.AskArkGenoaVlekBytes...))
	if err != nil || amd.ProductLine != "Genoa" || amd.ASK == nil || amd.ASVK == nil {
		t.Fatalf("ParseSNPRoot(AMD Genoa cert_chain) = %+v, %v", amd, err)
	}
}

func TestParseSNPRootRejects(t *testing.T) {
	test := testRoots(t)[0]
	amd, err := tsm.AMDSNPRoots()
	if err != nil {
		t.Fatal(err)
	}
	milan, genoa := amd[0], amd[1]
	// A root with the test ARK over another ASK key.
	keys, err := sim.NewSNPKeys()
	if err != nil {
		t.Fatal(err)
	}
	keys.ARK = sim.TestSNPKeys().ARK
	otherASK := newSNP(t, sim.SNPOptions{Keys: keys}).Roots()[0]
	if !otherASK.ARK.Equal(test.ARK) || otherASK.ASK.Equal(test.ASK) {
		t.Fatal("the root with another ASK key should share the ARK certificate and not the ASK")
	}
	certPEM := func(r tsm.SNPRoot, which string) []byte {
		c := map[string][]byte{"ARK": r.ARK.Raw, "ASK": r.ASK.Raw, "ASVK": r.ASVK.Raw}[which]
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"empty", nil, "no ARK"},
		{"intermediates only", cat(certPEM(test, "ASK"), certPEM(test, "ASVK")), "no ARK"},
		{"ARK only", certPEM(test, "ARK"), "neither an ASK (SEV-Milan) nor an ASVK"},
		{"two different ARKs", cat(certPEM(milan, "ARK"), certPEM(genoa, "ARK")), "more than one ARK"},
		{"ASK of another product line", cat(certPEM(genoa, "ASK"), certPEM(milan, "ARK")), `certificate "SEV-Genoa" is neither the ASK (SEV-Milan) nor the ASVK`},
		{"ASK not signed by the ARK", cat(certPEM(test, "ASK"), certPEM(milan, "ARK")), `"SEV-Milan" is not signed by "ARK-Milan"`},
		{"two different ASKs", cat(certPEM(otherASK, "ASK"), test.PEM()), `two different "SEV-Milan" certificates`},
		{"private key block", cat(test.PEM(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})), `PEM block of type "PRIVATE KEY"`},
		{"trailing garbage", cat(test.PEM(), []byte("garbage")), "trailing data after the last PEM certificate"},
		{"not a certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x00}}), "sev-snp roots: x509"},
		{"oversized", bytes.Repeat([]byte{'\n'}, 64<<10+1), "over the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tsm.ParseSNPRoot(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseSNPRoot() = %+v, %v; want an error containing %q", r, err, tc.wantErr)
			}
		})
	}
}
