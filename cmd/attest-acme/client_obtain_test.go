package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/acmeclient"
	"github.com/attest-acme/attest-acme/verifier"
)

// TestClientObtainPrintsProgress runs `attest-acme obtain` with a simulated
// SEV-SNP guest: exit 0, a progress line with its duration for each step on
// stderr, the paths on stdout, the files in lego's places, and the hook run
// with the paths in its environment.
func TestClientObtainPrintsProgress(t *testing.T) {
	ca := startClientCA(t, nil, 0)
	dir := t.TempDir()
	hookOut := filepath.Join(t.TempDir(), "hook")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := runClient(ctx, newClientCmd(), ca.args("obtain", dir, "vm-cli", "sim-snp",
		"--run-hook", `printf '%s %s %s\n' "$ATTEST_ACME_IDENTIFIER" "$ATTEST_ACME_CERT_PATH" "$LEGO_CERT_KEY_PATH" > `+hookOut)...)
	if r.code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	for _, stage := range []string{"account", "order", "evidence", "challenge", "finalize", "store", "hook"} {
		found := false
		for line := range strings.SplitSeq(r.stderr, "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == stage && strings.HasSuffix(f[1], "s") {
				found = true
			}
		}
		if !found {
			t.Errorf("no progress line with a duration for %s in:\n%s", stage, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "SIMULATED platform") {
		t.Error("no warning that the platform is simulated")
	}
	certs := filepath.Join(dir, "certificates")
	if !containsAllStrings(r.stdout, `permanent-identifier "vm-cli": new certificate`, filepath.Join(certs, "vm-cli.crt"), filepath.Join(certs, "vm-cli.key")) {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	for _, name := range []string{"vm-cli.crt", "vm-cli.issuer.crt", "vm-cli.key", "vm-cli.ear", "vm-cli.json"} {
		if _, err := os.Stat(filepath.Join(certs, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	accounts, _ := filepath.Glob(filepath.Join(dir, "accounts", "*", "noemail@example.com", "account.json"))
	keys, _ := filepath.Glob(filepath.Join(dir, "accounts", "*", "noemail@example.com", "keys", "noemail@example.com.key"))
	if len(accounts) != 1 || len(keys) != 1 {
		t.Errorf("lego's account layout: account files %v, keys %v", accounts, keys)
	}
	hook, err := os.ReadFile(hookOut)
	if err != nil {
		t.Fatalf("the hook did not run: %v", err)
	}
	if want := "vm-cli " + filepath.Join(certs, "vm-cli.crt") + " " + filepath.Join(certs, "vm-cli.key") + "\n"; string(hook) != want {
		t.Errorf("hook saw %q, want %q", hook, want)
	}
	var res acmeclient.Resource
	b, err := os.ReadFile(filepath.Join(certs, "vm-cli.json"))
	if err != nil || json.Unmarshal(b, &res) != nil || res.Identifier != "vm-cli" || res.Domain != "vm-cli" ||
		res.EvidenceMediaType != "application/vnd.veraison.tsm-report+cbor" || len(res.Nonce) != 64 {
		t.Errorf("resource file %s (%v)", b, err)
	}
}

// TestClientObtainJSON runs obtain with --json and the simulated TDX guest:
// stdout is one JSON object per step, then the result.
func TestClientObtainJSON(t *testing.T) {
	ca := startClientCA(t, nil, 0)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := runClient(ctx, newClientCmd(), ca.args("obtain", dir, "vm-json", "sim-tdx", "--json", "--key-type", "ed25519")...)
	if r.code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("stderr with --json: %q", r.stderr)
	}
	lines := jsonLines(t, r.stdout)
	var stages []string
	for _, l := range lines {
		stages = append(stages, l["stage"].(string))
		if l["status"] != "ok" {
			t.Errorf("line %v: status not ok", l)
		}
	}
	if want := []string{"account", "order", "evidence", "challenge", "finalize", "store", "result"}; !slices.Equal(stages, want) {
		t.Fatalf("stages %v, want %v", stages, want)
	}
	ev := lines[2]["fields"].(map[string]any)
	if len(ev["nonce"].(string)) != 64 || ev["evidence_media_type"] != "application/vnd.veraison.tsm-report+cbor" {
		t.Errorf("evidence event fields %v", ev)
	}
	res := lines[len(lines)-1]
	paths := res["paths"].(map[string]any)
	if res["identifier"] != "vm-json" || paths["key"] != filepath.Join(dir, "certificates", "vm-json.key") {
		t.Errorf("result %v", res)
	}
}

// TestClientObtainSwtpm runs obtain with --attester tpm on swtpm (started
// on free ports): the certificate's key is the attested key, and the EAR it
// carries says so for the TPM platform.
func TestClientObtainSwtpm(t *testing.T) {
	addr := clientStartSwtpm(t)
	ca := startClientCA(t, clientTPMTrust(t, addr), 0)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := runClient(ctx, newClientCmd(), ca.args("obtain", dir, "vm-swtpm", "tpm", "--tpm-tcp", addr, "--key-type", "ec384", "--quiet")...)
	if r.code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	if r.stdout != "" || r.stderr != "" {
		t.Errorf("--quiet printed stdout %q stderr %q", r.stdout, r.stderr)
	}
	sv, err := acmeclient.NewStorage(dir).Load("vm-swtpm")
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := sv.Leaf().PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		t.Fatalf("certificate key %T, want P-384", sv.Leaf().PublicKey)
	}
	earKey, err := verifier.LoadVerificationKey(filepath.Join(ca.dir, "secrets", "ear_signing_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := hex.DecodeString(sv.Nonce)
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&verifier.Checker{Key: earKey, MaxAge: time.Hour}).Check(sv.EAR, nonce, sv.Key.Public())
	if err != nil {
		t.Fatalf("the stored EAR does not check for the certificate key: %v", err)
	}
	if res.Platform != "tpm" {
		t.Errorf("EAR platform %q, want tpm", res.Platform)
	}
}

func containsAllStrings(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
