package main

import (
	"context"
	"crypto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/acmeclient"
	"github.com/attest-acme/attest-acme/evidence"
)

// TestClientRenew checks `attest-acme renew`: nothing stored is an error;
// a certificate that is not due is left alone, without opening the
// attester; a due one is replaced, with a new key, and the hook runs.
func TestClientRenew(t *testing.T) {
	ca := startClientCA(t, nil, 0)
	dir := t.TempDir()
	hookOut := filepath.Join(t.TempDir(), "hook")
	hook := `echo "$ATTEST_ACME_SERIAL" >> ` + hookOut
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	r := runClient(ctx, newClientCmd(), ca.args("renew", dir, "vm-r", "sim-tdx", "--quiet")...)
	if r.code != exitFailure || !containsAllStrings(r.stderr, `no certificate for "vm-r"`, "run attest-acme obtain first") {
		t.Fatalf("renew with nothing stored: exit %d, %q", r.code, r.stderr)
	}
	if r := runClient(ctx, newClientCmd(), ca.args("obtain", dir, "vm-r", "sim-tdx", "--quiet", "--key-type", "rsa2048")...); r.code != exitOK {
		t.Fatalf("obtain: exit %d: %s", r.code, r.stderr)
	}
	first, err := acmeclient.NewStorage(dir).Load("vm-r")
	if err != nil {
		t.Fatal(err)
	}

	// Not due: the attester is never opened (this one would fail).
	noAttester := &clientCmd{openAttester: func(context.Context, *clientFlags, env) (evidence.Attester, func(), error) {
		t.Error("the attester was opened for a renewal that is not due")
		return nil, nil, attesterError{os.ErrNotExist}
	}}
	r = runClient(ctx, noAttester, ca.args("renew", dir, "vm-r", "tpm", "--json", "--run-hook", hook)...)
	if r.code != exitOK {
		t.Fatalf("renew when not due: exit %d: %s", r.code, r.stderr)
	}
	jl := jsonLines(t, r.stdout)
	if res := jl[len(jl)-1]; res["renewed"] != false || res["serial"] != first.Serial {
		t.Errorf("renew when not due: result %v", res)
	}
	if _, err := os.Stat(hookOut); err == nil {
		t.Error("the hook ran though nothing was renewed")
	}

	// Due: asked for more than remains.
	r = runClient(ctx, newClientCmd(), ca.args("renew", dir, "vm-r", "sim-tdx", "--expires-in", "48h", "--run-hook", hook)...)
	if r.code != exitOK {
		t.Fatalf("renew when due: exit %d: %s", r.code, r.stderr)
	}
	second, err := acmeclient.NewStorage(dir).Load("vm-r")
	if err != nil {
		t.Fatal(err)
	}
	if second.Serial == first.Serial || second.Nonce == first.Nonce || second.EvidenceSHA256 == first.EvidenceSHA256 {
		t.Fatal("renew did not store a new certificate with fresh evidence")
	}
	if first.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(second.Key.Public()) {
		t.Error("renew kept the key without --reuse-key")
	}
	if second.KeyType != acmeclient.RSA2048 {
		t.Errorf("renewed key type %s, want the stored rsa2048", second.KeyType)
	}
	if !strings.Contains(r.stdout, "new certificate "+second.Serial) {
		t.Errorf("stdout %q", r.stdout)
	}
	hookRan, err := os.ReadFile(hookOut)
	if err != nil || string(hookRan) != second.Serial+"\n" {
		t.Errorf("hook output %q (%v), want the new serial once", hookRan, err)
	}

	// --force --reuse-key keeps the key.
	if r := runClient(ctx, newClientCmd(), ca.args("renew", dir, "vm-r", "sim-tdx", "--force", "--reuse-key", "--quiet")...); r.code != exitOK {
		t.Fatalf("renew --force --reuse-key: exit %d: %s", r.code, r.stderr)
	}
	third, err := acmeclient.NewStorage(dir).Load("vm-r")
	if err != nil {
		t.Fatal(err)
	}
	if third.Serial == second.Serial || !second.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(third.Key.Public()) {
		t.Error("renew --force --reuse-key: want a new certificate for the same key")
	}
}
