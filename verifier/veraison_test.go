package verifier

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/veraison/ear"
)

// startVeraison runs the Veraison deployment of testenv/veraison for the test
// and returns its env file. It skips when the binaries are not built
// (testenv/veraison/build.sh; .ci/run builds them).
func startVeraison(t *testing.T) map[string]string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bin", "veraison", "veraison-psa")); err != nil {
		t.Skip("Veraison is not built: run testenv/veraison/build.sh (CI does)")
	}
	state := t.TempDir()
	run := func(arg string) ([]byte, error) {
		cmd := exec.Command(filepath.Join(root, "testenv", "veraison", "run.sh"), arg)
		cmd.Env = append(os.Environ(), "VERAISON_STATE="+state)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Logf("run.sh %s: %s", arg, stderr.String())
		}
		return out, err
	}
	out, err := run("start")
	if err != nil {
		t.Fatalf("starting Veraison: %v", err)
	}
	t.Cleanup(func() { run("stop") })
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	for _, k := range []string{"VERAISON_VERIFICATION_URL", "VERAISON_EAR_KEY_PEM", "VERAISON_PSA_TOOL", "VERAISON_PSA_IAK", "VERAISON_PSA_CLAIMS"} {
		if env[k] == "" {
			t.Fatalf("Veraison env file lacks %s", k)
		}
	}
	return env
}

// psaToken has the test PSA device sign a token whose psa-nonce is d.
func psaToken(t *testing.T, env map[string]string, d []byte) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "token.cbor")
	cmd := exec.Command(env["VERAISON_PSA_TOOL"], "token", "-key", env["VERAISON_PSA_IAK"], "-claims", env["VERAISON_PSA_CLAIMS"], "-nonce", hex.EncodeToString(d), "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("veraison-psa token: %v: %s", err, b)
	}
	tok, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Interop (a): a real Veraison deployment appraises bare PSA evidence with
// nonce D through our remote client; the affirming EAR, checked under
// Veraison's key with nonce D, binds the kc's key, because D = SHA-512(kc) and
// the kc's nonce is N. This is the CA's path for a Veraison verifier.
func TestVeraisonInterop(t *testing.T) {
	env := startVeraison(t)
	earKey, err := LoadVerificationKey(env["VERAISON_EAR_KEY_PEM"])
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewClient(ClientConfig{URL: env["VERAISON_VERIFICATION_URL"], Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	checker := &Checker{Key: earKey}

	const keyAuth = "token.thumbprint"
	n := challenge.Nonce(keyAuth)
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kc, err := evidence.NewKC(certKey.Public(), n, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h, err := evidence.BindingHashFor(evidence.MediaTypePSAToken)
	if err != nil {
		t.Fatal(err)
	}
	d := evidence.Binding(h, kc)
	bundle, err := (evidence.Bundle{KC: kc, Platform: evidence.Evidence{MediaType: evidence.MediaTypePSAToken, Data: psaToken(t, env, d)}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}

	// The CA: decode the bundle against N, send the platform evidence with D.
	dec, err := challenge.DecodeBundle(bundle, n, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := client.Appraise(context.Background(), dec.Bundle.Platform, dec.D)
	if err != nil {
		t.Fatal(err)
	}
	r, err := checker.CheckWithoutKey(tok, dec.D)
	if err != nil {
		t.Fatalf("Veraison's EAR: %v", err)
	}
	if r.Status != ear.TrustTierAffirming || r.Platform != "PSA_IOT" {
		t.Fatalf("Veraison's EAR says %s %s", r.Platform, r.Status)
	}
	if !keysEqual(dec.KC.Key, certKey.Public()) {
		t.Fatal("the bound key is not the kc's key")
	}

	t.Run("kc swapped after signing", func(t *testing.T) {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		kc2, _ := evidence.NewKC(other.Public(), n, time.Now())
		b2, _ := (evidence.Bundle{KC: kc2, Platform: dec.Bundle.Platform}).Marshal()
		dec2, err := challenge.DecodeBundle(b2, n, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tok, err := client.Appraise(context.Background(), dec2.Bundle.Platform, dec2.D)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checker.CheckWithoutKey(tok, dec2.D); err == nil || !strings.Contains(err.Error(), "contraindicated") {
			t.Fatalf("a token over another kc's D: %v, want a contraindicated EAR", err)
		}
	})
	t.Run("EAR checked with another nonce", func(t *testing.T) {
		if _, err := checker.CheckWithoutKey(tok, n); err == nil || !strings.Contains(err.Error(), "eat_nonce") {
			t.Fatalf("Veraison EAR under nonce N: %v", err)
		}
	})
}
