package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

// issuer is a CA certificate and its key.
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newTestCA makes a CA certificate, self-signed when parent is nil.
func newTestCA(t testing.TB, name string, parent *issuer) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// newTestLeaf certifies pub as a TCG profile does for a TPM key: an empty
// subject and a critical subjectAltName holding only a directoryName with
// the TPM manufacturer, model and version, which Go's verifier treats as an
// unhandled critical extension unless told otherwise.
func newTestLeaf(t testing.TB, pub crypto.PublicKey, iss *issuer, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tpmName := pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{2, 23, 133, 2, 1}, Value: "id:53544D20"}, // tcg-at-tpmManufacturer
		{Type: asn1.ObjectIdentifier{2, 23, 133, 2, 2}, Value: "swtpm"},       // tcg-at-tpmModel
		{Type: asn1.ObjectIdentifier{2, 23, 133, 2, 3}, Value: "id:20191023"}, // tcg-at-tpmVersion
	}}
	rdn, err := asn1.Marshal(tpmName.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	san, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: rdn}})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(time.Now().UnixNano()),
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        notAfter,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Critical: true, Value: san}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, iss.cert, pub, iss.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.UnhandledCriticalExtensions) != 1 {
		t.Fatalf("test leaf has %d unhandled critical extensions, want the SAN", len(c.UnhandledCriticalExtensions))
	}
	return c
}
