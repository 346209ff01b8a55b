package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attest-acme/attest-acme/inspect"
)

// Artefacts the inspect package commits (inspect/testdata) and the golden
// vectors of the challenge package.
var (
	inspectTestdata = filepath.Join("..", "..", "inspect", "testdata")
	goldenDir       = filepath.Join("..", "..", "challenge", "testdata", "golden")
)

// writeKeyPEM writes a fresh P-256 public key, which verifies no EAR.
func writeKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInspectCommand(t *testing.T) {
	kc, err := os.ReadFile(filepath.Join(goldenDir, "kc.cbor"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	notAKey := filepath.Join(dir, "not-a-key.pem")
	if err := os.WriteFile(notAKey, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ear := filepath.Join(inspectTestdata, "ear.jwt")
	earKey := filepath.Join(inspectTestdata, "ear-key.pem")
	cert := filepath.Join(inspectTestdata, "cert-ear.pem")
	wrongKey := writeKeyPEM(t)

	tests := []struct {
		name   string
		args   []string
		stdin  []byte
		code   int
		stdout []string // substrings of stdout
		stderr []string // substrings of stderr
	}{
		{name: "the golden payload, nested", args: []string{filepath.Join(goldenDir, "payload.json")}, code: exitOK,
			stdout: []string{"input: text, 460 bytes", "device-attest-01 challenge payload", "attestation object", "bundle", "key-confirmation claims set", "configfs-tsm report"}},
		{name: "a kc as hex on standard input", args: []string{"-"}, stdin: []byte(hex.EncodeToString(kc) + "\n"), code: exitOK,
			stdout: []string{"input: hex, 255 bytes", "key-confirmation claims set"}},
		{name: "standard input without a name", stdin: kc, code: exitOK, stdout: []string{"input: binary, 127 bytes"}},
		{name: "a SEV-SNP payload", args: []string{filepath.Join(inspectTestdata, "payload-sev-snp.json")}, code: exitOK,
			stdout: []string{"AMD SEV-SNP ATTESTATION_REPORT", "MEASUREMENT", "REPORT_DATA = D"}},
		{name: "a TDX report", args: []string{filepath.Join(inspectTestdata, "report-tdx.cbor")}, code: exitOK, stdout: []string{"Intel TDX quote", "MRTD", "RTMR0"}},
		{name: "a TPM bundle", args: []string{filepath.Join(inspectTestdata, "bundle-tpm.cbor")}, code: exitOK, stdout: []string{"TPM 2.0 quote", "PCR 0"}},
		{name: "an EAR without a key says it is not verified", args: []string{ear}, code: exitOK,
			stdout: []string{"EAR: attestation result", "NOT VERIFIED", "workload", "recognized and not compromised"}},
		{name: "an EAR with its key verifies, flag after the file", args: []string{ear, "--ear-key", earKey}, code: exitOK,
			stdout: []string{"valid: ES256 under the given key"}},
		{name: "an EAR with a wrong key fails", args: []string{"--ear-key", wrongKey, ear}, code: exitFailure,
			stdout: []string{"INVALID under the given key"}, stderr: []string{"EAR signature does not verify under the given key"}},
		{name: "a certificate with its EAR verified", args: []string{"--ear-key", earKey, cert}, code: exitOK,
			stdout: []string{"X.509 certificate", "PermanentIdentifier  web-01", "id-pe-cmw", "EAR akpub = key  yes"}},
		{name: "a certificate with a wrong key fails", args: []string{"--ear-key", wrongKey, cert}, code: exitFailure,
			stderr: []string{"EAR signature does not verify"}},
		{name: "a key but nothing to verify fails", args: []string{"--ear-key", earKey, filepath.Join(goldenDir, "kc.cbor")}, code: exitFailure,
			stderr: []string{"holds no EAR to verify"}},
		{name: "unrecognised input is a usage error naming what was tried", stdin: []byte("hello, world\n"), code: exitUsage,
			stderr: []string{"standard input: input (13 bytes) was not recognised", "as raw bytes:", "as hex:", "as base64:", "as base64url:"}},
		{name: "a bundle that does not parse names the parser's error", args: []string{"-"}, stdin: []byte{0xa1, 0x68, '_', '_', 'c', 'm', 'w', 'c', '_', 't', 0x01}, code: exitUsage,
			stderr: []string{"bundle:"}},
		{name: "input over 1 MiB is refused", stdin: bytes.Repeat([]byte{'0'}, inspect.MaxInputSize+1), code: exitUsage,
			stderr: []string{"over the limit of 1048576 bytes (1 MiB)"}},
		{name: "a missing file", args: []string{filepath.Join(dir, "missing")}, code: exitInternal, stderr: []string{"no such file"}},
		{name: "an --ear-key that is not a key", args: []string{"--ear-key", notAKey, ear}, code: exitInternal, stderr: []string{"--ear-key"}},
		{name: "two files", args: []string{ear, cert}, code: exitUsage, stderr: []string{"one input at a time, got 2"}},
		{name: "an unknown flag", args: []string{"--yaml", ear}, code: exitUsage, stderr: []string{"flag provided but not defined"}},
		{name: "help", args: []string{"-h"}, code: exitOK, stderr: []string{"usage:", "--ear-key FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := realMain(append([]string{"inspect"}, tt.args...), bytes.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
		})
	}
}

// --json prints one JSON document with the input, the tree and the
// problems, values in full.
func TestInspectCommandJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"inspect", "--json", filepath.Join(inspectTestdata, "cert-ear.pem"), "--ear-key", filepath.Join(inspectTestdata, "ear-key.pem")},
		nil, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	var doc struct {
		Input struct {
			Encoding string `json:"encoding"`
			Size     int    `json:"size"`
		} `json:"input"`
		Object struct {
			Kind    string `json:"kind"`
			IDPeCMW struct {
				Kind  string `json:"kind"`
				Value struct {
					Kind      string `json:"kind"`
					Signature struct {
						Status string `json:"status"`
					} `json:"signature"`
					Claims map[string]any `json:"claims"`
				} `json:"value"`
			} `json:"id_pe_cmw"`
			AkpubIsPublicKey bool `json:"akpub_is_public_key"`
		} `json:"object"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not the JSON document: %v\n%s", err, stdout.String())
	}
	o := doc.Object
	if doc.Input.Encoding != "PEM" || o.Kind != "certificate" || o.IDPeCMW.Kind != "cmw-record" || o.IDPeCMW.Value.Kind != "ear" {
		t.Errorf("read %+v", doc)
	}
	if o.IDPeCMW.Value.Signature.Status != "valid" || !o.AkpubIsPublicKey || len(doc.Problems) != 0 {
		t.Errorf("signature %q, akpub is the key %v, problems %v", o.IDPeCMW.Value.Signature.Status, o.AkpubIsPublicKey, doc.Problems)
	}
	if o.IDPeCMW.Value.Claims["eat_profile"] != "tag:github.com,2023:veraison/ear" {
		t.Errorf("the EAR's claims are not in the JSON in full: %v", o.IDPeCMW.Value.Claims)
	}
}
