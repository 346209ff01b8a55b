package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the demo on each simulated platform and checks what it says
// and what it leaves behind.
func TestDemo(t *testing.T) {
	for _, platform := range []string{"snp", "tdx", "tpm"} {
		t.Run(platform, func(t *testing.T) {
			dir := t.TempDir()
			var stdout, stderr bytes.Buffer
			code := realMain([]string{"demo", "--platform", platform, "--dir", dir}, nil, &stdout, &stderr)
			if code != exitOK {
				if platform == "tpm" && strings.Contains(stderr.String(), "cgo") {
					t.Skipf("no TPM simulator in this build: %s", stderr.String())
				}
				t.Fatalf("demo exited %d:\n%s%s", code, stdout.String(), stderr.String())
			}
			out := stdout.String()
			for _, want := range []string{"certificate issued", `identifier     demo-cvm-1`, "affirming", `workload "demo"`, "akpub = certificate key: true", "instance-identity=2"} {
				if !strings.Contains(out, want) {
					t.Errorf("demo output lacks %q:\n%s", want, out)
				}
			}
			for _, f := range []string{"demo-cvm-1.crt", "demo-cvm-1.key", "demo-cvm-1.ear"} {
				if _, err := os.Stat(filepath.Join(dir, "client", "certificates", f)); err != nil {
					t.Errorf("demo left no %s: %v", f, err)
				}
			}
		})
	}
}

func TestDemoRejectsUnknownPlatform(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"demo", "--platform", "sgx"}, nil, &stdout, &stderr); code != exitUsage {
		t.Fatalf("exit %d, want %d: %s", code, exitUsage, stderr.String())
	}
}
