package verifier

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyErrorsNameFileLineField(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "not-a-cert.pem"), []byte("hello"))
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown top-level field", "ear: {signing_key: k.pem}\nworkload: []\n", "line 2: field workload not found"},
		{"unknown nested field", "ear: {signing_key: k.pem}\nworkloads:\n  - name: a\n    sev_snp:\n      measurment: aa\n", "line 5: field measurment not found"},
		{"no signing key", "workloads: []\n", "ear.signing_key: missing"},
		{"bad hex", "ear: {signing_key: k.pem}\nworkloads:\n  - name: a\n    sev_snp:\n      measurement: xyz\n", "line 5: not hex"},
		{"short measurement", "ear: {signing_key: k.pem}\nworkloads:\n  - name: a\n    sev_snp:\n      measurement: abcd\n", "line 5: workloads[0].sev_snp.measurement: 2 bytes, want 48"},
		{"missing measurement", "ear: {signing_key: k.pem}\nworkloads:\n  - name: a\n    sev_snp: {host_data: " + strings.Repeat("00", 32) + "}\n", "workloads[0].sev_snp.measurement: missing"},
		{"duplicate name", "ear: {signing_key: k.pem}\nworkloads:\n  - name: a\n    tdx: {mrtd: " + strings.Repeat("00", 48) + "}\n  - name: a\n    tdx: {mrtd: " + strings.Repeat("00", 48) + "}\n", "line 5: workloads[1].name: \"a\" is used twice"},
		{"no platform", "ear: {signing_key: k.pem}\nworkloads:\n  - name: a\n", "names no platform"},
		{"bad PCR bank", "ear: {signing_key: k.pem}\nworkloads:\n  - name: a\n    tpm: {pcrs: {md5: {0: \"00\"}}}\n", `bank "md5"`},
		{"PCR index", "ear: {signing_key: k.pem}\nworkloads:\n  - name: a\n    tpm:\n      pcrs:\n        sha256:\n          24: \"" + strings.Repeat("00", 32) + "\"\n", "line 7: workloads[0].tpm.pcrs.sha256.24: PCR index out of 0..23"},
		{"RTMR index", "ear: {signing_key: k.pem}\nworkloads:\n  - name: a\n    tdx:\n      mrtd: " + strings.Repeat("00", 48) + "\n      rtmrs: {4: " + strings.Repeat("00", 48) + "}\n", "RTMR index out of 0..3"},
		{"missing anchor file", "ear: {signing_key: k.pem}\ntrust_anchors:\n  sev_snp:\n    roots: [nope.pem]\n", "line 4: trust_anchors.sev_snp.roots[0]"},
		{"anchor not PEM", "ear: {signing_key: k.pem}\ntrust_anchors:\n  tpm:\n    ak_public_keys: [not-a-cert.pem]\n", "line 4: trust_anchors.tpm.ak_public_keys[0]"},
		{"bad lifetime", "ear: {signing_key: k.pem}\nsession: {lifetime: 3h}\n", "line 2: session.lifetime: 3h0m0s is outside 1s..1h"},
		{"unknown media type", "ear: {signing_key: k.pem}\nmedia_types: [text/plain]\n", `media_types: "text/plain"`},
		{"max vmpl", "ear: {signing_key: k.pem}\nworkloads:\n  - name: a\n    sev_snp: {measurement: " + strings.Repeat("00", 48) + ", max_vmpl: 4}\n", "max_vmpl: 4 is outside 0..3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "policy.yaml")
			_, err := ParsePolicy(path, []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("ParsePolicy error = %v, want it to name %s and contain %q", err, path, c.want)
			}
		})
	}
}

func TestExamplePolicyLoads(t *testing.T) {
	// The commented example in docs/ is a real, loadable policy.
	path := filepath.Join("..", "docs", "examples", "verifier-policy.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("example policy not written yet: %v", err)
	}
	dir := t.TempDir()
	// Its anchor files are relative to the policy: provide them.
	for _, name := range []string{"ak.pem"} {
		write(t, filepath.Join(dir, name), pemPublic(t, mustKey(t)))
	}
	if _, err := ParsePolicy(filepath.Join(dir, "verifier-policy.yaml"), b); err != nil {
		t.Fatal(err)
	}
}

func TestSigningKeyCreatedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ear.pem")
	k1, created, err := LoadOrCreateSigningKey(path)
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	k2, created, err := LoadOrCreateSigningKey(path)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("second start: created=%v err=%v same=%v", created, err, k1.Equal(k2))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	pub, err := LoadVerificationKey(path)
	if err != nil || !pub.Equal(k1.Public()) {
		t.Fatalf("verification key from the key file: %v", err)
	}
	write(t, path, []byte("garbage"))
	if _, _, err := LoadOrCreateSigningKey(path); err == nil {
		t.Fatal("a garbage key file was accepted")
	}
}
