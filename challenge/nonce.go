package challenge

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// KeyAuthorization is token || "." || base64url(JWK thumbprint of the account
// key) (RFC 8555 §8.1). thumbprint is already base64url-encoded.
func KeyAuthorization(token, thumbprint string) (string, error) {
	if token == "" || strings.Contains(token, ".") {
		return "", fmt.Errorf("challenge: token %q is empty or contains a dot", token)
	}
	if thumbprint == "" {
		return "", fmt.Errorf("challenge: account key thumbprint is empty")
	}
	return token + "." + thumbprint, nil
}

// Nonce is N = SHA-256(keyAuthorization) (docs/protocol.md §1.4): it binds the
// challenge token and the account key.
func Nonce(keyAuthorization string) []byte {
	n := sha256.Sum256([]byte(keyAuthorization))
	return n[:]
}
