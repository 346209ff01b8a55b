package psa

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// ueidTypeRAND is the first byte of a RAND-type UEID (EAT), the form PSA
// instance IDs take.
const ueidTypeRAND = 0x01

// GenerateIAK creates a P-256 IAK from random and returns it as a PKCS#8
// "PRIVATE KEY" PEM block.
func GenerateIAK(random io.Reader) ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, fmt.Errorf("psa: generating a P-256 key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("psa: encoding the key as PKCS#8: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadIAK parses a P-256 private key from a PEM "PRIVATE KEY" (PKCS#8) or
// "EC PRIVATE KEY" (SEC 1) block. Other curves and key types are rejected:
// tokens are signed ES256.
func LoadIAK(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	blk, rest := pem.Decode(pemBytes)
	if blk == nil {
		return nil, errors.New("psa: IAK: no PEM block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("psa: IAK: data after the PEM block")
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("psa: IAK: PEM block is %q, want PRIVATE KEY or EC PRIVATE KEY", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("psa: IAK: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("psa: IAK is a %T, want an ECDSA P-256 key", k)
	}
	if ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("psa: IAK is on %s, want P-256", ek.Curve.Params().Name)
	}
	return ek, nil
}

// PublicKeyPEM returns the SPKI "PUBLIC KEY" PEM of pub, the form a CoMID's
// pkix-base64-key verification key takes.
func PublicKeyPEM(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("psa: encoding the IAK public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// InstanceID returns the PSA instance ID this project uses for an IAK: a
// RAND-type UEID, 0x01 followed by SHA-256 of the uncompressed public point
// (33 bytes).
func InstanceID(pub *ecdsa.PublicKey) ([]byte, error) {
	ek, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("psa: IAK public key: %w", err)
	}
	h := sha256.Sum256(ek.Bytes())
	return append([]byte{ueidTypeRAND}, h[:]...), nil
}
