package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// EARKeyFiles names the files WriteEARKey writes.
type EARKeyFiles struct {
	// PrivateJWK is the signing key for vts (ear-signer.key), mode 0600.
	PrivateJWK string
	// PublicJWK is the verification key as a JWK with "alg": "ES256".
	PublicJWK string
	// PublicPEM is the verification key as a PEM "PUBLIC KEY" (SPKI).
	PublicPEM string
}

// EARKeyFilesIn returns the names of the EAR key files under dir.
func EARKeyFilesIn(dir string) EARKeyFiles {
	return EARKeyFiles{
		PrivateJWK: filepath.Join(dir, "ear-signing-key.jwk"),
		PublicJWK:  filepath.Join(dir, "ear-verification-key.jwk"),
		PublicPEM:  filepath.Join(dir, "ear-verification-key.pem"),
	}
}

// WriteEARKey generates a fresh P-256 key from random and writes it under dir
// as the files of EARKeyFilesIn. Existing files are not overwritten.
func WriteEARKey(dir string, random io.Reader) (EARKeyFiles, error) {
	files := EARKeyFilesIn(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return files, fmt.Errorf("ear key: creating %s: %w", dir, err)
	}

	priv, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return files, fmt.Errorf("ear key: generating a P-256 key: %w", err)
	}

	privJWK, err := jwk.FromRaw(priv)
	if err != nil {
		return files, fmt.Errorf("ear key: converting the private key to a JWK: %w", err)
	}
	if err := privJWK.Set(jwk.AlgorithmKey, jwa.ES256); err != nil {
		return files, fmt.Errorf("ear key: setting alg: %w", err)
	}
	pubJWK, err := privJWK.PublicKey()
	if err != nil {
		return files, fmt.Errorf("ear key: deriving the public JWK: %w", err)
	}

	privJSON, err := json.MarshalIndent(privJWK, "", "  ")
	if err != nil {
		return files, fmt.Errorf("ear key: encoding the private JWK: %w", err)
	}
	pubJSON, err := json.MarshalIndent(pubJWK, "", "  ")
	if err != nil {
		return files, fmt.Errorf("ear key: encoding the public JWK: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return files, fmt.Errorf("ear key: encoding the public key as SPKI: %w", err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})

	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{files.PrivateJWK, append(privJSON, '\n'), 0o600},
		{files.PublicJWK, append(pubJSON, '\n'), 0o644},
		{files.PublicPEM, pubPEM, 0o644},
	} {
		if err := writeNew(f.path, f.data, f.mode); err != nil {
			return files, fmt.Errorf("ear key: %w", err)
		}
	}
	return files, nil
}

// writeNew writes data to a file that must not exist yet.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	return nil
}
