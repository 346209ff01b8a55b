package tsm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tsm"
)

// testNow is the appraisal time of the tests: inside the simulated chain's
// validity (2024-2049).
func testNow() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }

// testKeys returns one certificate key of each type a kc may name.
func testKeys(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{"ec-p256": p256, "ec-p384": p384, "ed25519": ed, "rsa-2048": r2048}
}

// testRoots returns the simulator's trust anchors.
func testRoots(t testing.TB) []tsm.SNPRoot {
	t.Helper()
	roots, err := sim.SNPTestRoots()
	if err != nil {
		t.Fatal(err)
	}
	return roots
}

// snpVerifier returns a verifier trusting roots, at testNow.
func snpVerifier(t testing.TB, roots []tsm.SNPRoot) *tsm.SNPVerifier {
	t.Helper()
	v, err := tsm.NewSNPVerifier(tsm.SNPOptions{Roots: roots, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// newSNP returns a simulated guest.
func newSNP(t testing.TB, o sim.SNPOptions) *sim.SNP {
	t.Helper()
	s, err := sim.NewSNP(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testD returns a 64-byte D that differs per seed.
func testD(seed byte) []byte { return bytes.Repeat([]byte{seed}, tsm.InBlobSize) }

// attest has s attest d and returns the report map bytes.
func attest(t testing.TB, s evidence.Attester, d []byte) []byte {
	t.Helper()
	ev, err := s.Attest(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if ev.MediaType != evidence.MediaTypeTSMReport {
		t.Fatalf("media type %q, want %q", ev.MediaType, evidence.MediaTypeTSMReport)
	}
	return ev.Data
}

// parseReport parses a report map the test produced.
func parseReport(t testing.TB, b []byte) *tsm.Report {
	t.Helper()
	r, err := tsm.ParseReport(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// marshal encodes a report map the test built.
func marshal(t testing.TB, r *tsm.Report) []byte {
	t.Helper()
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
