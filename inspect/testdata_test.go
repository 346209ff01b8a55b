package inspect_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/inspect"
)

var update = flag.Bool("update", false, "regenerate the artefacts under testdata/ and their expected text renderings")

// The committed artefacts: real objects made by the simulated platforms,
// verifier.Signer and x509.CreateCertificate, which `attest-acme inspect`
// opens (the README shows their renderings, the NAME.txt files).
const (
	fileSNPPayload = "payload-sev-snp.json" // device-attest-01 payload, SEV-SNP bundle
	fileTDXReport  = "report-tdx.cbor"      // configfs-tsm report map of a TD
	fileTPMBundle  = "bundle-tpm.cbor"      // bundle of kc and TPM quote
	fileEAR        = "ear.jwt"              // EAR for the SEV-SNP payload's key
	fileEARKey     = "ear-key.pem"          // the EAR's verification key
	fileCert       = "cert-ear.pem"         // certificate with the EAR in id-pe-cmw
)

// testdataRenderings lists each artefact, whether it is rendered with the
// EAR key, and the file of its expected text.
var testdataRenderings = []struct {
	file, txt string
	withKey   bool
}{
	{fileSNPPayload, "payload-sev-snp.txt", false},
	{fileTDXReport, "report-tdx.txt", false},
	{fileTPMBundle, "bundle-tpm.txt", false},
	{fileEAR, "ear.txt", false},
	{fileCert, "cert-ear.txt", true},
}

// TestInspectTestdata renders each committed artefact as text and compares
// it with its expected rendering. With -update it first makes the
// artefacts afresh, then rewrites the renderings.
func TestInspectTestdata(t *testing.T) {
	if *update {
		regenerate(t)
	}
	keyPEM, err := os.ReadFile(filepath.Join("testdata", fileEARKey))
	if err != nil {
		t.Fatalf("%v (run go test ./inspect -run TestInspectTestdata -update)", err)
	}
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		t.Fatalf("%s: no PEM block", fileEARKey)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	earKey := pub.(*ecdsa.PublicKey)

	for _, r := range testdataRenderings {
		t.Run(r.file, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", r.file))
			if err != nil {
				t.Fatal(err)
			}
			opts := inspect.Options{}
			if r.withKey {
				opts.EARKey = earKey
			}
			res := run(t, in, opts)
			if len(res.Problems) != 0 {
				t.Errorf("problems: %v", res.Problems)
			}
			got := []byte(text(t, res))
			path := filepath.Join("testdata", r.txt)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the rendering of %s differs from %s (run with -update if the change is intended):\n%s", r.file, r.txt, got)
			}
		})
	}
}

// regenerate makes every artefact afresh and writes it under testdata/.
func regenerate(t *testing.T) {
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key, signer := newKey(t), newKey(t)

	snp := answer(t, snpAttester(t, false), key.Public())
	write(fileSNPPayload, append(snp.Payload, '\n'))

	tdx, err := tdxAttester(t, false).Attest(t.Context(), evidence.Binding(crypto.SHA512, snp.KC))
	if err != nil {
		t.Fatal(err)
	}
	write(fileTDXReport, tdx.Data)

	// Without the simulator (no cgo) the subtest skips and the committed
	// TPM bundle stays as it is.
	if !t.Run("TPM", func(t *testing.T) {
		write(fileTPMBundle, answer(t, tpmAttester(t), key.Public()).Bundle)
	}) {
		t.Fatal("the TPM bundle was not made")
	}

	ear := signEAR(t, signer, key.Public(), snp.Nonce)
	write(fileEAR, append(ear, '\n'))
	write(fileEARKey, publicKeyPEM(t, signer.Public()))
	write(fileCert, pemEncode("CERTIFICATE", earCertificate(t, key, "web-01", ear)))
}
