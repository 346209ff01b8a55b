package sim_test

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/google/go-configfs-tsm/report"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/testing/data"
)

// snpTestRootsFile is the committed PEM of SNPTestRoots: what a development
// policy file names. The test below fails if the simulated chain changes.
const snpTestRootsFile = "testdata/snp_test_roots.pem"

func snpNow() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }

func snpVerifier(t testing.TB, roots []tsm.SNPRoot) *tsm.Verifier {
	t.Helper()
	v, err := tsm.NewSNPVerifier(tsm.SNPOptions{Roots: roots, Now: snpNow})
	if err != nil {
		t.Fatal(err)
	}
	return tsm.NewVerifier(tsm.Options{SNP: v})
}

func newSNP(t testing.TB, o sim.SNPOptions) *sim.SNP {
	t.Helper()
	s, err := sim.NewSNP(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func snpD(seed byte) []byte { return bytes.Repeat([]byte{seed}, tsm.InBlobSize) }

// TestSNPTestRootsAreTheCommittedOnes shows that the test roots are the same
// certificates in every process (a policy written by one process trusts the
// reports of another), and that they parse as trust anchors.
func TestSNPTestRootsAreTheCommittedOnes(t *testing.T) {
	got, err := sim.SNPTestRootsPEM()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(snpTestRootsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("SNPTestRootsPEM() differs from %s", snpTestRootsFile)
	}
	root, err := tsm.ParseSNPRoot(want)
	if err != nil {
		t.Fatal(err)
	}
	if root.ProductLine != sim.SNPProductLine || root.ASK == nil || root.ASVK == nil {
		t.Fatalf("root = %+v, want %s with ASK and ASVK", root, sim.SNPProductLine)
	}
	// A guest's reports verify under the committed PEM.
	d := snpD(1)
	ev, err := newSNP(t, sim.SNPOptions{}).Attest(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snpVerifier(t, []tsm.SNPRoot{root}).Appraise(ev.Data, d); err != nil {
		t.Fatal(err)
	}
}

// TestSNPTestRootsAreGoSevGuestKeys shows where the test roots come from: the
// fixed keys go-sev-guest publishes for its own fake AMD chain.
func TestSNPTestRootsAreGoSevGuestKeys(t *testing.T) {
	roots, err := sim.SNPTestRoots()
	if err != nil {
		t.Fatal(err)
	}
	r := roots[0]
	for _, c := range []struct {
		name string
		got  crypto.PublicKey
		want crypto.PublicKey
	}{
		{"ARK", r.ARK.PublicKey, data.ARKPrivateKey.Public()},
		{"ASK", r.ASK.PublicKey, data.ASKPrivateKey.Public()},
		{"ASVK", r.ASVK.PublicKey, data.ASVKPrivateKey.Public()},
	} {
		if !c.got.(interface{ Equal(crypto.PublicKey) bool }).Equal(c.want) {
			t.Errorf("%s key is not go-sev-guest's test key", c.name)
		}
	}
}

// TestSNPProviderBehavesLikeTheKernel drives the fake configfs-tsm directly,
// as the kernel's sev_guest provider would be.
func TestSNPProviderBehavesLikeTheKernel(t *testing.T) {
	s := newSNP(t, sim.SNPOptions{VMPL: 2})

	resp, err := report.Get(s.Client(), &report.Request{InBlob: snpD(2), GetAuxBlob: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Provider != "sev_guest\n" {
		t.Errorf("provider attribute = %q, want %q", resp.Provider, "sev_guest\n")
	}
	if len(resp.OutBlob) != abi.ReportSize || len(resp.AuxBlob) == 0 {
		t.Errorf("outblob %d bytes, auxblob %d bytes", len(resp.OutBlob), len(resp.AuxBlob))
	}

	r, err := report.Create(s.Client(), &report.Request{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Destroy()
	floor, err := r.PrivilegeLevelFloor()
	if err != nil || floor != 2 {
		t.Errorf("privlevel_floor = %d, %v; want 2", floor, err)
	}

	for _, tc := range []struct {
		name    string
		req     report.Request
		wantErr string
	}{
		{"inblob of 32 bytes", report.Request{InBlob: snpD(3)[:32]}, "sev_guest needs an inblob of 64 bytes, got 32"},
		{"inblob of 65 bytes", report.Request{InBlob: append(snpD(3), 0)}, "could not write report inblob"},
		{"privlevel below the guest's VMPL", report.Request{InBlob: snpD(3), Privilege: &report.Privilege{Level: 1}}, "privlevel \"1\" is not in 2..3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := report.Get(s.Client(), &tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("report.Get() error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewSNPRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       sim.SNPOptions
		wantErr string
	}{
		{"short measurement", sim.SNPOptions{Measurement: make([]byte, 32)}, "measurement is 32 bytes, want 48"},
		{"long host data", sim.SNPOptions{HostData: make([]byte, 33)}, "host data is 33 bytes, want 32"},
		{"short chip ID", sim.SNPOptions{ChipID: make([]byte, 8)}, "chip ID is 8 bytes, want 64"},
		{"short report ID", sim.SNPOptions{ReportID: make([]byte, 1)}, "report ID is 1 bytes, want 32"},
		{"VMPL 4", sim.SNPOptions{VMPL: 4}, "VMPL 4, want 0 to 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sim.NewSNP(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewSNP() error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestSNPAttestConcurrently attests from several goroutines on one simulated
// guest (meaningful under -race); every report verifies.
func TestSNPAttestConcurrently(t *testing.T) {
	s := newSNP(t, sim.SNPOptions{})
	v := snpVerifier(t, s.Roots())
	for i := range 4 {
		t.Run(fmt.Sprintf("attester %d", i), func(t *testing.T) {
			t.Parallel()
			d := snpD(byte(0x10 + i))
			ev, err := s.Attest(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Appraise(ev.Data, d); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// BenchmarkSimSNPAttest measures one simulated attestation: a configfs-tsm
// round trip through faketsm, building and signing an SEV-SNP report, and
// encoding the report map.
func BenchmarkSimSNPAttest(b *testing.B) {
	s := newSNP(b, sim.SNPOptions{})
	d := snpD(4)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Attest(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
}
