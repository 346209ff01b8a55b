package verifier

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
)

// Reference values of the test workloads.
var (
	snpMeasurement = bytes.Repeat([]byte{0xab}, 48)
	snpHostData    = bytes.Repeat([]byte{0x11}, 32)
)

// fixture is a policy trusting the simulators, and what tests need around it.
type fixture struct {
	dir    string
	policy *Policy
	signer *Signer
	app    *Appraiser
	now    time.Time
}

// policyYAML is the test policy; %TPMKEY% is replaced with a pinned AK file
// line or nothing.
const policyYAML = `
id: test-policy
ear:
  signing_key: ear.pem
trust_anchors:
  tpm:
    ak_public_keys: [%TPMKEYS%]
  sev_snp:
    roots: [snp-roots.pem]
  tdx:
    roots: [tdx-root.pem]
workloads:
  - name: snp-web
    sev_snp:
      measurement: %SNPMEAS%
      host_data: %SNPHOST%
      min_tcb: {bootloader: 2, tee: 0, snp: 5, microcode: 100}
  - name: tdx-web
    tdx:
      mrtd: %MRTD%
  - name: tpm-web
    tpm:
      pcrs:
        sha256:
          0: "%PCR0%"
`

// newFixture writes the simulators' test roots and a policy into a temp dir.
// pcr0 is the expected sha256 PCR 0 (the simulator's initial value is zeros).
func newFixture(t testing.TB, akPEM []byte) *fixture {
	t.Helper()
	dir := t.TempDir()
	snpPEM, err := sim.SNPTestRootsPEM()
	if err != nil {
		t.Fatal(err)
	}
	tdxPEM, err := sim.TDXTestRootPEM()
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "snp-roots.pem"), snpPEM)
	write(t, filepath.Join(dir, "tdx-root.pem"), tdxPEM)
	keys := ""
	if akPEM != nil {
		write(t, filepath.Join(dir, "ak.pem"), akPEM)
		keys = "ak.pem"
	}
	y := strings.NewReplacer(
		"%TPMKEYS%", keys,
		"%SNPMEAS%", hex.EncodeToString(snpMeasurement),
		"%SNPHOST%", hex.EncodeToString(snpHostData),
		"%MRTD%", hex.EncodeToString(sim.DefaultTDXMRTD()),
		"%PCR0%", strings.Repeat("00", 32),
	).Replace(policyYAML)
	path := filepath.Join(dir, "policy.yaml")
	write(t, path, []byte(y))
	p, err := LoadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := LoadOrCreateSigningKey(filepath.Join(dir, "ear.pem"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, policy: p, now: time.Now()}
	clock := func() time.Time { return f.now }
	if f.signer, err = NewSigner(key, clock); err != nil {
		t.Fatal(err)
	}
	if f.app, err = NewAppraiser(AppraiserConfig{Policy: p, Signer: f.signer, Now: clock}); err != nil {
		t.Fatal(err)
	}
	return f
}

func write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func pemPublic(t testing.TB, k crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// goodSNP is a simulated guest that matches workload snp-web.
func goodSNP(t testing.TB, mod func(*sim.SNPOptions)) evidence.Attester {
	t.Helper()
	o := sim.SNPOptions{Measurement: snpMeasurement, HostData: snpHostData, ReportedTCB: tcbRaw(3, 0, 8, 115)}
	if mod != nil {
		mod(&o)
	}
	s, err := sim.NewSNP(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tcbRaw(bl, tee, snp, ucode uint8) uint64 {
	return uint64(bl) | uint64(tee)<<8 | uint64(snp)<<48 | uint64(ucode)<<56
}

// answer makes a bundle for a fresh key with attester a, for key authorization ka.
func answer(t testing.TB, a evidence.Attester, ka string, now time.Time) (*challenge.Answer, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ans, err := challenge.NewAnswer(context.Background(), a, ka, k.Public(), now)
	if err != nil {
		t.Fatal(err)
	}
	return ans, k
}

func nonceOf(ka string) []byte { n := sha256.Sum256([]byte(ka)); return n[:] }

// appraise appraises a bundle and checks the EAR's signature and nonce, and
// returns what it says (without demanding an affirming status).
func (f *fixture) appraise(t testing.TB, bundle, nonce []byte) *Result {
	t.Helper()
	tok, err := f.app.Appraise(context.Background(), evidence.Evidence{MediaType: evidence.MediaTypeBundle, Data: bundle}, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return decodeEAR(t, f, tok, nonce)
}

func mustKey(t testing.TB) crypto.PublicKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}
