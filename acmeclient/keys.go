package acmeclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// KeyType names a certificate key type, with lego's names where lego has
// one (--key-type ec256, rsa2048, ...).
type KeyType string

// The certificate key types (docs/protocol.md §2 lists the COSE_Key forms the
// kc can carry).
const (
	EC256   KeyType = "ec256"
	EC384   KeyType = "ec384"
	Ed25519 KeyType = "ed25519"
	RSA2048 KeyType = "rsa2048"
	RSA3072 KeyType = "rsa3072"
	RSA4096 KeyType = "rsa4096"
)

// KeyTypes lists every KeyType, in the order help texts show them.
func KeyTypes() []KeyType {
	return []KeyType{EC256, EC384, Ed25519, RSA2048, RSA3072, RSA4096}
}

// ParseKeyType returns the key type named s (case-insensitive).
func ParseKeyType(s string) (KeyType, error) {
	for _, kt := range KeyTypes() {
		if strings.EqualFold(s, string(kt)) {
			return kt, nil
		}
	}
	names := make([]string, 0, len(KeyTypes()))
	for _, kt := range KeyTypes() {
		names = append(names, string(kt))
	}
	return "", fmt.Errorf("key type %q is not one of %s", s, strings.Join(names, ", "))
}

// GenerateKey makes a new private key of type kt.
func GenerateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case EC256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EC384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("key type %q is not supported", kt)
}

// KeyTypeOf returns the KeyType of a public key, or an error for a key this
// package does not make.
func KeyTypeOf(pub crypto.PublicKey) (KeyType, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return EC256, nil
		case elliptic.P384():
			return EC384, nil
		}
		return "", fmt.Errorf("ECDSA key on curve %s is not supported", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return Ed25519, nil
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return RSA2048, nil
		case 3072:
			return RSA3072, nil
		case 4096:
			return RSA4096, nil
		}
		return "", fmt.Errorf("RSA key of %d bits is not supported", k.N.BitLen())
	}
	return "", fmt.Errorf("key of type %T is not supported", pub)
}

// EncodeKeyPEM encodes a private key as a PKCS #8 "PRIVATE KEY" PEM block,
// the one form that holds every KeyType.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// maxKeyPEM bounds a key file read back from disk.
const maxKeyPEM = 16 << 10

// ParseKeyPEM reads one private key PEM block: PKCS #8 ("PRIVATE KEY"),
// SEC 1 ("EC PRIVATE KEY", as lego writes account keys) or PKCS #1
// ("RSA PRIVATE KEY"). Anything after the block is rejected.
func ParseKeyPEM(b []byte) (crypto.Signer, error) {
	if len(b) > maxKeyPEM {
		return nil, fmt.Errorf("private key: %d bytes, over the limit of %d", len(b), maxKeyPEM)
	}
	blk, rest := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("private key: no PEM block")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("private key: data after the PEM block")
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("private key: PEM block %q, want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key: %T is not a signing key", k)
	}
	return s, nil
}

// maxCommonName is ub-common-name (RFC 5280): a longer identifier is left
// out of the CSR subject, which step-ca accepts (the CN is empty or the ID).
const maxCommonName = 64

// newCSR makes the finalize CSR for key: CN = the permanent identifier (the
// only CN step-ca accepts besides none) and the DNS names as SANs.
func newCSR(key crypto.Signer, identifier string, dnsNames []string) ([]byte, error) {
	tmpl := &x509.CertificateRequest{DNSNames: dnsNames}
	if len(identifier) <= maxCommonName {
		tmpl.Subject = pkix.Name{CommonName: identifier}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	return der, nil
}

// samePublicKey reports whether a and b are the same key.
func samePublicKey(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}
