package inspect

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
)

// keyType names a public key: "ECDSA P-256", "Ed25519", "RSA 2048".
func keyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case nil:
		return "none"
	default:
		return fmt.Sprintf("%T", pub)
	}
}

// keyGroup describes a public key: its type and the SHA-256 of its
// SubjectPublicKeyInfo DER (the fingerprint step-ca and this project pin
// keys by), in one line of text; the DER itself in JSON.
func keyGroup(pub crypto.PublicKey) Field {
	g := Group{field("type", "type", keyType(pub))}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		g = append(g, field("error", "error", err.Error()))
		return Field{Value: g, Text: keyType(pub) + " (no SubjectPublicKeyInfo: " + err.Error() + ")"}
	}
	sum := sha256.Sum256(der)
	g = append(g,
		field("spki_sha256", "SHA-256(SPKI)", Hex(sum[:])),
		Field{Key: "spki", Value: Hex(der), JSONOnly: true})
	return Field{Value: g, Text: fmt.Sprintf("%s, SHA-256(SPKI) %s", keyType(pub), hex.EncodeToString(sum[:]))}
}

// keyField is keyGroup under a key and label.
func keyField(key, label string, pub crypto.PublicKey) Field {
	f := keyGroup(pub)
	f.Key, f.Label = key, label
	return f
}

// sameKey compares public keys by their parameters.
func sameKey(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && b != nil && ka.Equal(b)
}
