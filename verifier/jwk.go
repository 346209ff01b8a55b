package verifier

import (
	"crypto/ecdsa"
	"encoding/json"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// publicJWK encodes the EAR verification key as a JWK (with alg ES256), as
// served at /.well-known/veraison/verification.
func publicJWK(pub *ecdsa.PublicKey) (json.RawMessage, error) {
	k, err := jwk.Import(pub)
	if err != nil {
		return nil, fmt.Errorf("JWK: %w", err)
	}
	if err := k.Set(jwk.AlgorithmKey, "ES256"); err != nil {
		return nil, fmt.Errorf("JWK: %w", err)
	}
	return json.Marshal(k)
}

// parseJWKPublic parses a JWK and returns its raw public key.
func parseJWKPublic(b []byte) (any, error) {
	k, err := jwk.ParseKey(b)
	if err != nil {
		return nil, err
	}
	pk, err := k.PublicKey()
	if err != nil {
		return nil, err
	}
	var raw any
	if err := jwk.Export(pk, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}
