package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/verifier"
)

// committed is the directory of the committed configurations.
const committed = "../config"

func genOptions(t *testing.T, configDir string) options {
	t.Helper()
	return options{ConfigDir: configDir, Out: t.TempDir(), Identifier: defaultIdentifier, Now: time.Now}
}

func readPEMCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGenWritesWhatTheServicesRead runs gen on the committed configurations
// and reads what it wrote the way the three services will.
func TestGenWritesWhatTheServicesRead(t *testing.T) {
	o := genOptions(t, committed)
	var log bytes.Buffer
	if err := run(context.Background(), o, &log); err != nil {
		t.Fatalf("gen: %v", err)
	}
	l := newLayout(o.Out)

	if _, err := verifier.LoadPolicy(l.vPolicy); err != nil {
		t.Errorf("the verifier's policy does not load: %v", err)
	}
	if _, _, err := caplugin.LoadConfig(l.caConfig); err != nil {
		t.Errorf("the CA's ca.json does not load: %v", err)
	}

	// The CA's chain and the root the cvm trusts.
	root, inter := readPEMCert(t, l.caRoot), readPEMCert(t, l.caInter)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, err := inter.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the intermediate does not chain to the root: %v", err)
	}
	if !readPEMCert(t, l.cvmRoot).Equal(root) {
		t.Error("the cvm's root is not the CA's root")
	}

	// The verifier's TLS certificate, as the CA dials it.
	vt := readPEMCert(t, l.caVerifierTLS)
	if err := vt.VerifyHostname("verifier"); err != nil {
		t.Errorf("the verifier's TLS certificate: %v", err)
	}
	if err := vt.VerifyHostname("localhost"); err != nil { // the verifier's own health check
		t.Errorf("the verifier's TLS certificate: %v", err)
	}

	// Private keys are private, and the root's key is in no image.
	for _, p := range []string{l.caInterKey, filepath.Join(l.vDir, "ear-signing-key.pem"), filepath.Join(l.vDir, "tls.key")} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 600", p, st.Mode().Perm())
		}
	}
	for _, dir := range []string{l.caDir, l.vDir, l.cvmDir, l.empty} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(d.Name(), "root_ca_key") {
				t.Errorf("%s: the root's private key is in an image directory", p)
			}
			return nil
		})
	}
	if entries, err := os.ReadDir(l.empty); err != nil || len(entries) != 0 {
		t.Errorf("%s: want an empty directory, got %d entries (%v)", l.empty, len(entries), err)
	}
}

// TestGenKeepsKeysAcrossRuns shows that a second run changes no key or
// certificate, so that images rebuilt later match the CA state in its volume.
func TestGenKeepsKeysAcrossRuns(t *testing.T) {
	o := genOptions(t, committed)
	l := newLayout(o.Out)
	files := []string{l.caRoot, l.caInter, l.caInterKey, l.caEARKey, l.caVerifierTLS, l.cvmRoot,
		filepath.Join(l.vDir, "ear-signing-key.pem"), filepath.Join(l.vDir, "tls.key"), filepath.Join(l.vDir, "tls.crt")}
	read := func() [][]byte {
		var out [][]byte
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		return out
	}
	if err := run(context.Background(), o, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	first := read()
	if err := run(context.Background(), o, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for i, b := range read() {
		if !bytes.Equal(b, first[i]) {
			t.Errorf("%s changed on the second run", files[i])
		}
	}
}

// editedConfig copies the committed configurations with edits to each file.
func editedConfig(t *testing.T, caJSON func(map[string]any), policy func(string) string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(committed, "ca.json"))
	if err != nil {
		t.Fatal(err)
	}
	if caJSON != nil {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		caJSON(m)
		if b, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := os.ReadFile(filepath.Join(committed, "verifier-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(p)
	if policy != nil {
		s = policy(s)
		if s == string(p) {
			t.Fatal("the policy edit changed nothing")
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "verifier-policy.yaml"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func pluginSection(m map[string]any) map[string]any { return m[caplugin.ConfigKey].(map[string]any) }

// TestGenRejects shows that gen refuses configurations with which the
// environment could not issue, naming what is wrong, before any image is built.
func TestGenRejects(t *testing.T) {
	zeros := strings.Repeat("00", 48)
	tests := []struct {
		name       string
		caJSON     func(map[string]any)
		policy     func(string) string
		identifier string
		want       string
	}{
		{"a workload measurement the simulated guest does not have", nil,
			func(s string) string { return strings.Replace(s, zeros, strings.Repeat("11", 48), 1) }, "",
			"does not affirm the simulated SEV-SNP guest"},
		{"an issuance rule that does not cover the cvm", func(m map[string]any) {
			pluginSection(m)["issuance"] = []any{map[string]any{"workload": "demo", "permanentIdentifiers": []any{"web-*"}}}
		}, nil, "", `workload "demo" may not have permanent-identifier "cvm-1"`},
		{"an issuance rule for another workload", func(m map[string]any) {
			pluginSection(m)["issuance"] = []any{map[string]any{"workload": "other", "permanentIdentifiers": []any{"cvm-*"}}}
		}, nil, "", `workload "demo" has no issuance rule`},
		{"an identifier the rule does not cover", nil, nil, "web-1", `may not have permanent-identifier "web-1"`},
		{"the embedded verifier instead of the service", func(m map[string]any) {
			pluginSection(m)["verifier"] = map[string]any{"type": "embedded", "policy": "../verifier/policy.yaml"}
		}, nil, "", `the test environment's CA uses the verifier service ("service")`},
		{"a pinned EAR key that is not the verifier's", func(m map[string]any) {
			pluginSection(m)["verifier"].(map[string]any)["earKey"] = "certs/root_ca.crt"
		}, nil, "", "attestAcme.verifier.earKey is not the verifier's EAR key"},
		{"a verifier without TLS", nil,
			func(s string) string {
				return strings.Replace(s, "listen: 0.0.0.0:8443", "listen: 0.0.0.0:8443\n  plain_http: true", 1)
			}, "",
			"serves the verifier over TLS"},
		{"test roots under a name gen does not write", nil,
			func(s string) string {
				return strings.Replace(s, "roots: [sev_snp_test_roots.pem]", "roots: [sev_snp_test_roots.pem, sev_snp_test_roots.pem]", 1)
			}, "",
			"trust_anchors.sev_snp.roots: want exactly [sev_snp_test_roots.pem]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := genOptions(t, editedConfig(t, tt.caJSON, tt.policy))
			if tt.identifier != "" {
				o.Identifier = tt.identifier
			}
			err := run(context.Background(), o, &bytes.Buffer{})
			if err == nil {
				t.Fatalf("gen accepted it, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestComposeFileMatchesTheConfigs ties docker-compose.yml and e2e.sh to the
// configurations gen checks: the cvm's identifier and the CA's provisioner.
func TestComposeFileMatchesTheConfigs(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	cmd := compose.Services["cvm"].Command
	flag := func(name string) string {
		i := slices.Index(cmd, name)
		if i < 0 || i+1 >= len(cmd) {
			t.Fatalf("the cvm's command %q has no %s", cmd, name)
		}
		return cmd[i+1]
	}
	if id := flag("--identifier"); id != defaultIdentifier {
		t.Errorf("docker-compose.yml: the cvm's --identifier is %q, gen checks %q", id, defaultIdentifier)
	}
	if a := flag("--attester"); a != "sim-snp" {
		t.Errorf("docker-compose.yml: the cvm's --attester is %q, gen checks sim-snp", a)
	}
	caCfg, _, err := caplugin.LoadConfig(filepath.Join(committed, "ca.json"))
	if err != nil {
		t.Fatal(err)
	}
	prov := caCfg.AuthorityConfig.Provisioners[0].GetName()
	if want := "https://ca:8443/acme/" + prov + "/directory"; flag("--server") != want {
		t.Errorf("docker-compose.yml: the cvm's --server is %q, want %q", flag("--server"), want)
	}
	e2e, err := os.ReadFile("../e2e.sh")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^readonly ID=(\S+)$`).FindSubmatch(e2e); m == nil || string(m[1]) != defaultIdentifier {
		t.Errorf("e2e.sh: ID is not %q", defaultIdentifier)
	}
}
