package challenge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/veraison/cmw"
)

// TestEARFromCertificateRejects checks the id-pe-cmw extension is read
// strictly.
func TestEARFromCertificateRejects(t *testing.T) {
	ext := func(mt string, ind cmw.Indicator, critical bool) []pkix.Extension {
		m, err := cmw.NewMonad(mt, []byte("ear"), ind)
		if err != nil {
			t.Fatal(err)
		}
		e, err := m.EncodeX509Extension(cmw.ChoiceCbor, critical)
		if err != nil {
			t.Fatal(err)
		}
		return []pkix.Extension{*e}
	}
	good := ext(MediaTypeEAR, cmw.AttestationResults, false)
	for _, tc := range []struct {
		name string
		exts []pkix.Extension
		want string
	}{
		{"no extension", nil, "no such extension"},
		{"twice", append(good, good...), "appears twice"},
		{"critical", ext(MediaTypeEAR, cmw.AttestationResults, true), "critical"},
		{"other media type", ext("application/jwt", cmw.AttestationResults, false), "media type"},
		{"evidence indicator", ext(MediaTypeEAR, cmw.Evidence, false), "indicator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A certificate as parsed: crypto/x509 itself refuses a
			// certificate with a duplicate extension.
			c := &x509.Certificate{Extensions: tc.exts}
			if _, err := EARFromCertificate(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("EARFromCertificate: %v, want %q", err, tc.want)
			}
		})
	}
	if ear, err := EARFromCertificate(selfSigned(t, good)); err != nil || string(ear) != "ear" {
		t.Fatalf("EARFromCertificate of a good extension: %q %v", ear, err)
	}
}

func TestNewEARExtensionRoundTrip(t *testing.T) {
	ext, err := NewEARExtension([]byte("a.b.c"))
	if err != nil {
		t.Fatal(err)
	}
	if ext.Critical || !ext.Id.Equal(cmw.OidExtCmw) {
		t.Fatalf("extension %v critical %v", ext.Id, ext.Critical)
	}
	ear, err := EARFromCertificate(selfSigned(t, []pkix.Extension{ext}))
	if err != nil || string(ear) != "a.b.c" {
		t.Fatalf("round trip: %q %v", ear, err)
	}
}

func selfSigned(t *testing.T, exts []pkix.Extension) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), ExtraExtensions: exts}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
