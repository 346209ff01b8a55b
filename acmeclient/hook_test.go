package acmeclient

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestCommandHook checks the hook command: it sees the paths in its
// environment, a non-zero exit is an error, and one that outlives its
// timeout is killed (its whole process group) with an error saying so.
func TestCommandHook(t *testing.T) {
	sv := &Saved{Certificate: testCertificate(t, "vm-1", 7, "ear"), Paths: NewStorage("/d").Paths("vm-1")}
	var out bytes.Buffer
	ctx := context.Background()
	h := CommandHook(`echo "$ATTEST_ACME_IDENTIFIER $ATTEST_ACME_CERT_PATH $ATTEST_ACME_KEY_PATH $ATTEST_ACME_SERIAL $LEGO_CERT_PATH"`, 0, &out, &out)
	if err := h(ctx, sv); err != nil {
		t.Fatal(err)
	}
	if want := "vm-1 /d/certificates/vm-1.crt /d/certificates/vm-1.key 7 /d/certificates/vm-1.crt\n"; out.String() != want {
		t.Errorf("hook printed %q, want %q", out.String(), want)
	}
	if err := CommandHook("exit 3", 0, &out, &out)(ctx, sv); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("failing hook: %v", err)
	}
	// The child of the shell must die too, or Run would wait for its output.
	err := CommandHook("sleep 30 & sleep 30", 100*time.Millisecond, &out, &out)(ctx, sv)
	if err == nil || !strings.Contains(err.Error(), "killed after 100ms") {
		t.Errorf("slow hook: %v", err)
	}
}
