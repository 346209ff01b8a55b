package tdxpki

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/pcs"
)

// go-tdx-guest reads the PCK certificate's SGX extensions with pcs; what it
// reads must be what Generate wrote.
func TestGenerateWritesWhatGoTDXGuestReads(t *testing.T) {
	p, err := Generate(DefaultNotBefore, DefaultNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.PCK.Extensions); n != 6 {
		t.Fatalf("PCK certificate has %d extensions, go-tdx-guest wants 6", n)
	}
	ext, err := pcs.PckCertificateExtensions(p.PCK)
	if err != nil {
		t.Fatal(err)
	}
	if ext.FMSPC != hex.EncodeToString(TestFMSPC) || ext.PCEID != "0000" || len(ext.PPID) != 2*ppidSize {
		t.Fatalf("FMSPC %s, PCE-ID %s, PPID %s", ext.FMSPC, ext.PCEID, ext.PPID)
	}
	if ext.TCB.PCESvn != TestPCESVN || !bytes.Equal(ext.TCB.CPUSvn, TestCPUSVN) || !bytes.Equal(ext.TCB.CPUSvnComponents, TestCPUSVN) {
		t.Fatalf("TCB %+v", ext.TCB)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.Root)
	inter := x509.NewCertPool()
	inter.AddCert(p.Intermediate)
	if _, err := p.PCK.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*x509.Certificate{p.Root, p.Intermediate, p.PCK} {
		if c.SignatureAlgorithm != x509.ECDSAWithSHA256 || len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != Organization {
			t.Fatalf("%s: %v, %q", c.Subject, c.SignatureAlgorithm, c.Subject.Organization)
		}
	}
}

func TestParse(t *testing.T) {
	p, err := Generate(DefaultNotBefore, DefaultNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Generate(DefaultNotBefore, DefaultNotAfter)
	if err != nil {
		t.Fatal(err)
	}
	files, err := p.Files()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(files[FileChain], files[FilePCKKey])
	if err != nil {
		t.Fatal(err)
	}
	if !got.Root.Equal(p.Root) || !got.PCK.Equal(p.PCK) || !got.PCKKey.Equal(p.PCKKey) || !bytes.Equal(got.ChainPEM, p.ChainPEM) {
		t.Fatal("Parse(Files()) changed the PKI")
	}
	if !bytes.Equal(files[FileRoot], p.RootPEM()) {
		t.Fatal("root file is not the root")
	}
	otherFiles, err := other.Files()
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		chain, key []byte
		want       string
	}{
		"key of another PCK": {files[FileChain], otherFiles[FilePCKKey], "does not match"},
		"root only":          {files[FileRoot], files[FilePCKKey], "has 1 certificates, want 3"},
		"not PEM":            {[]byte("x"), files[FilePCKKey], "other than CERTIFICATE"},
		"key not PEM":        {files[FileChain], []byte("x"), "not a PRIVATE KEY"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tc.chain, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error that says %q", err, tc.want)
			}
		})
	}
}
