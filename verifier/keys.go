package verifier

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateSigningKey reads the EAR signing key (PEM, PKCS #8 or SEC 1) from
// path, or, if the file does not exist, generates a P-256 key and saves it
// there with mode 0600. created says which happened.
func LoadOrCreateSigningKey(path string) (key *ecdsa.PrivateKey, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := parseECPrivateKeyPEM(b)
		if err != nil {
			return nil, false, fmt.Errorf("EAR signing key %s: %w", path, err)
		}
		return k, false, nil
	case errors.Is(err, fs.ErrNotExist):
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, false, fmt.Errorf("EAR signing key: generating: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, false, fmt.Errorf("EAR signing key: encoding: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, fmt.Errorf("EAR signing key: %w", err)
		}
		// O_EXCL: two verifiers starting at once must not overwrite each other's key.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("EAR signing key: %w", err)
		}
		if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("EAR signing key: writing %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, false, fmt.Errorf("EAR signing key: writing %s: %w", path, err)
		}
		return k, true, nil
	default:
		return nil, false, fmt.Errorf("EAR signing key: %w", err)
	}
}

func parseECPrivateKeyPEM(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		k   any
		err error
	)
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q, want PRIVATE KEY or EC PRIVATE KEY", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key (ES256)")
	}
	return ek, nil
}

// LoadVerificationKey reads a pinned EAR verification key: a PEM public key,
// a PEM certificate, or a JWK as served at /.well-known/veraison/verification.
func LoadVerificationKey(path string) (*ecdsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("EAR verification key: %w", err)
	}
	k, err := ParseVerificationKey(b)
	if err != nil {
		return nil, fmt.Errorf("EAR verification key %s: %w", path, err)
	}
	return k, nil
}

// ParseVerificationKey parses a PEM public key, PEM certificate, PEM private
// key (its public half) or JWK into a P-256 public key.
func ParseVerificationKey(b []byte) (*ecdsa.PublicKey, error) {
	var pub any
	if blk, _ := pem.Decode(b); blk != nil {
		switch blk.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return nil, err
			}
			pub = k
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, err
			}
			pub = c.PublicKey
		case "PRIVATE KEY", "EC PRIVATE KEY":
			k, err := parseECPrivateKeyPEM(b)
			if err != nil {
				return nil, err
			}
			pub = &k.PublicKey
		default:
			return nil, fmt.Errorf("PEM block %q is not a key or certificate", blk.Type)
		}
	} else {
		k, err := parseJWKPublic(b)
		if err != nil {
			return nil, fmt.Errorf("neither PEM nor JWK: %w", err)
		}
		pub = k
	}
	ek, ok := pub.(*ecdsa.PublicKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key (ES256)")
	}
	return ek, nil
}
