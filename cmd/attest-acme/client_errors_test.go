package main

import (
	"context"
	"crypto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence"
)

// clientBigAttester returns configfs-tsm evidence larger than a bundle
// record may be.
type clientBigAttester struct{}

func (clientBigAttester) BindingHash() crypto.Hash { return crypto.SHA512 }

func (clientBigAttester) Attest(context.Context, []byte) (evidence.Evidence, error) {
	return evidence.Evidence{MediaType: evidence.MediaTypeTSMReport, Data: make([]byte, 40<<10)}, nil
}

// TestClientErrors checks each bad situation: obtain exits with the
// documented code, prints one line (with --quiet, nothing else) that says
// what went wrong, and leaves --dir as it was. Where the situation arises
// after the CA was reached, --dir already holds an account and a
// certificate from a first obtain.
func TestClientErrors(t *testing.T) {
	// The CA's rule lets it certify vm-* only.
	ca := startClientCA(t, func(ds *caplugin.DevSetup) { ds.PermanentIdentifiers = []string{"vm-*"} }, 0)
	big := &clientCmd{openAttester: func(context.Context, *clientFlags, env) (evidence.Attester, func(), error) {
		return clientBigAttester{}, func() {}, nil
	}}
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	unreachable := "https://" + clientFreePort(t) + "/acme/attest/directory"

	for _, tc := range []struct {
		name string
		// prepared: --dir holds a first certificate before the failing run.
		prepared bool
		cmd      *clientCmd
		args     func(dir string) []string
		code     int
		want     []string
		skip     func() string
	}{
		{name: "missing flag", code: exitUsage,
			args: func(dir string) []string {
				return []string{"obtain", "--server", ca.url, "--dir", dir, "--attester", "sim-snp", "--quiet"}
			},
			want: []string{"missing --identifier"}},
		{name: "identifier the client cannot order", code: exitUsage,
			args: func(dir string) []string { return ca.args("obtain", dir, "vm 1", "sim-snp", "--quiet") },
			want: []string{`permanent identifier "vm 1" has white space`}},
		{name: "CA unreachable", code: exitFailure,
			args: func(dir string) []string {
				return []string{"obtain", "--server", unreachable, "--dir", dir, "--identifier", "vm-1", "--attester", "sim-snp", "--quiet"}
			},
			want: []string{"cannot reach the CA at " + unreachable, "connection refused"}},
		{name: "CA not trusted", code: exitFailure,
			args: func(dir string) []string {
				return []string{"obtain", "--server", ca.url, "--dir", dir, "--identifier", "vm-1", "--attester", "sim-snp", "--quiet"}
			},
			want: []string{"presented a TLS certificate that is not trusted", "unknown authority", "--ca-root FILE"}},
		{name: "ACME problem", prepared: true, code: exitFailure,
			args: func(dir string) []string { return ca.args("obtain", dir, "db-1", "sim-snp", "--quiet") },
			want: []string{`device-attest-01 challenge for permanent-identifier "db-1"`,
				"urn:ietf:params:acme:error:rejectedIdentifier", `workload "demo" may not have permanent-identifier "db-1"`}},
		{name: "no TPM device", code: exitInternal,
			args: func(dir string) []string {
				return ca.args("obtain", dir, "vm-1", "tpm", "--tpm", "/nonexistent/tpmrm0", "--quiet")
			},
			want: []string{"no TPM at /nonexistent/tpmrm0", "no such file or directory"}},
		{name: "no TPM over TCP", code: exitInternal,
			args: func(dir string) []string {
				return ca.args("obtain", dir, "vm-1", "tpm", "--tpm-tcp", clientFreePort(t), "--quiet")
			},
			want: []string{"no TPM at tcp://", "connection refused"}},
		{name: "no configfs-tsm", code: exitInternal,
			args: func(dir string) []string { return ca.args("obtain", dir, "vm-1", "tsm", "--quiet") },
			want: []string{"no configfs-tsm", "/sys/kernel/config/tsm/report"},
			skip: func() string {
				if _, err := os.Stat("/sys/kernel/config/tsm/report"); err == nil {
					return "this machine has configfs-tsm"
				}
				return ""
			}},
		{name: "evidence too large", prepared: true, code: exitFailure, cmd: big,
			args: func(dir string) []string { return ca.args("obtain", dir, "vm-2", "tsm", "--quiet") },
			want: []string{"platform evidence for the device-attest-01 answer", "40960 bytes, over the limit of 32768"}},
		{name: "directory not writable", code: exitInternal,
			args: func(string) []string {
				return ca.args("obtain", filepath.Join(notADir, "dir"), "vm-1", "sim-snp", "--quiet")
			},
			want: []string{"the ACME account", "not a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != nil {
				if why := tc.skip(); why != "" {
					t.Skip(why)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dir := filepath.Join(t.TempDir(), "client")
			if tc.prepared {
				if r := runClient(ctx, newClientCmd(), ca.args("obtain", dir, "vm-0", "sim-snp", "--quiet")...); r.code != exitOK {
					t.Fatalf("first obtain: exit %d: %s", r.code, r.stderr)
				}
			}
			before := clientSnapshot(t, dir)
			cmd := tc.cmd
			if cmd == nil {
				cmd = newClientCmd()
			}
			args := tc.args(dir)
			r := runClient(ctx, cmd, args...)
			t.Logf("stderr: %s", r.stderr)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d", r.code, tc.code)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if len(lines) != 1 || len(errorLines(r.stderr, "obtain")) != 1 || r.stdout != "" {
				t.Errorf("want exactly one error line and no stdout; stderr %q stdout %q", r.stderr, r.stdout)
			}
			if !containsAllStrings(r.stderr, tc.want...) {
				t.Errorf("message %q does not contain %q", r.stderr, tc.want)
			}
			if d := clientDiff(before, clientSnapshot(t, dir)); len(d) > 0 {
				t.Errorf("--dir changed: %v", d)
			}
		})
	}
}

// TestClientErrorHumanMode checks that without --quiet the failure is still
// one error line, after the progress of the steps that succeeded, and that
// --json ends with a result object carrying the error and the exit code.
func TestClientErrorHumanMode(t *testing.T) {
	ca := startClientCA(t, func(ds *caplugin.DevSetup) { ds.PermanentIdentifiers = []string{"vm-*"} }, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := runClient(ctx, newClientCmd(), ca.args("obtain", t.TempDir(), "db-1", "sim-snp")...)
	if r.code != exitFailure {
		t.Fatalf("exit %d", r.code)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if len(errorLines(r.stderr, "obtain")) != 1 || !strings.HasPrefix(last, "attest-acme obtain: ") || !strings.Contains(last, "rejectedIdentifier") {
		t.Errorf("stderr:\n%s\nwant progress lines, then the one error line", r.stderr)
	}
	if !strings.Contains(r.stderr, "  evidence ") {
		t.Errorf("no progress for the steps that succeeded:\n%s", r.stderr)
	}

	r = runClient(ctx, newClientCmd(), ca.args("obtain", t.TempDir(), "db-1", "sim-snp", "--json")...)
	jl := jsonLines(t, r.stdout)
	res := jl[len(jl)-1]
	if res["stage"] != "result" || res["status"] != "error" || res["exit_code"] != float64(exitFailure) ||
		!strings.Contains(res["error"].(string), "rejectedIdentifier") {
		t.Errorf("--json result %v", res)
	}
	if len(errorLines(r.stderr, "obtain")) != 1 {
		t.Errorf("--json stderr %q, want the one error line", r.stderr)
	}
}
