package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/acmeclient"
)

// TestClientRun runs `attest-acme run --json --run-hook ...` against a CA
// that issues certificates of a few seconds: it obtains and renews at
// least twice, each time with a new nonce and new evidence, the hook runs
// after each issuance with the new certificate's serial and path, and
// cancelling the context (what SIGTERM does) stops it with exit 0 and a
// consistent set on disk.
func TestClientRun(t *testing.T) {
	ca := startClientCA(t, nil, 4*time.Second)
	dir := t.TempDir()
	hookOut := filepath.Join(t.TempDir(), "hook")
	hook := `echo "$ATTEST_ACME_SERIAL $(openssl x509 -noout -serial -in "$ATTEST_ACME_CERT_PATH" 2>/dev/null | cut -d= -f2)" >> ` + hookOut
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	done := make(chan clientResult, 1)
	go func() {
		done <- runClient(ctx, newClientCmd(), ca.args("run", dir, "vm-daemon", "sim-snp", "--json", "--run-hook", hook, "--max-backoff", "2s")...)
	}()
	// Bounded wait for three hook runs: the first certificate and two renewals.
	var lines []string
	for i := 0; ; i++ {
		b, _ := os.ReadFile(hookOut)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) > 0 && len(lines) >= 3 {
			break
		}
		if i == 900 {
			cancel()
			r := <-done
			t.Fatalf("fewer than 3 issuances in 90s (hook saw %q)\nstdout:\n%s\nstderr:\n%s", lines, r.stdout, r.stderr)
		}
		select {
		case r := <-done:
			t.Fatalf("run ended early: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel()
	var r clientResult
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
	if r.code != exitOK {
		t.Fatalf("run stopped with exit %d: %s", r.code, r.stderr)
	}

	t.Logf("hook saw: %q", lines)
	serials := map[string]bool{}
	for _, l := range lines[:3] {
		f := strings.Fields(l)
		if len(f) == 0 || serials[f[0]] {
			t.Errorf("hook line %q: no serial, or the same one again", l)
			continue
		}
		serials[f[0]] = true
		// openssl, where installed, read the file the hook was pointed at.
		if len(f) == 2 && !strings.EqualFold(strings.TrimLeft(f[1], "0"), strings.TrimLeft(f[0], "0")) {
			t.Errorf("hook line %q: the certificate file is not the new certificate", l)
		}
	}

	nonces, evidence, hooks := map[string]bool{}, map[string]bool{}, 0
	for _, ev := range jsonLines(t, r.stdout) {
		fields, _ := ev["fields"].(map[string]any)
		switch ev["stage"] {
		case "evidence":
			nonces[fields["nonce"].(string)] = true
			evidence[fields["evidence_sha256"].(string)] = true
		case "hook":
			if ev["status"] == "ok" {
				hooks++
			}
		case "retry":
			t.Errorf("a renewal failed: %v", ev["error"])
		}
	}
	if len(nonces) < 3 || len(evidence) < 3 || hooks < 3 {
		t.Errorf("%d distinct nonces, %d distinct evidence, %d hook runs; want 3 or more of each", len(nonces), len(evidence), hooks)
	}
	if _, err := acmeclient.NewStorage(dir).Load("vm-daemon"); err != nil {
		t.Errorf("the stored set after stopping: %v", err)
	}
}
