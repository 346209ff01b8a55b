package caplugin_test

import (
	"os"
	"strings"
	"testing"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence/sim"
)

// TestInitDev: the development setup is complete (the other tests run on
// it); here, what it refuses and what it must not leave readable.
func TestInitDev(t *testing.T) {
	snpRoots, err := sim.SNPTestRootsPEM()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := caplugin.InitDev(caplugin.DevSetup{Dir: dir, SNPRootsPEM: snpRoots})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir + "/secrets/intermediate_ca_key", dir + "/secrets/root_ca_key", dir + "/secrets/ear_signing_key.pem", files.CAConfig} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", p, fi.Mode().Perm())
		}
	}
	if files.DirectoryURL != "https://localhost:8443/acme/attest/directory" {
		t.Errorf("directory URL %s", files.DirectoryURL)
	}

	for _, tc := range []struct {
		name    string
		s       caplugin.DevSetup
		wantErr string
	}{
		{"an existing CA", caplugin.DevSetup{Dir: dir, SNPRootsPEM: snpRoots}, "refusing to overwrite"},
		{"no directory", caplugin.DevSetup{SNPRootsPEM: snpRoots}, "no directory"},
		{"no trust anchors", caplugin.DevSetup{Dir: t.TempDir()}, "no platform trust anchors"},
		{"TPM keys without PCR values", caplugin.DevSetup{Dir: t.TempDir(), TPMAKPublicKeysPEM: []byte("x")}, "without reference PCR values"},
		{"anchors the verifier cannot read", caplugin.DevSetup{Dir: t.TempDir(), SNPRootsPEM: []byte("not PEM")}, "the verifier policy written does not load"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := caplugin.InitDev(tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("InitDev: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
