package psa

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/veraison/ear"
)

// ParseEARKey parses a pinned EAR verification key, given either as a JWK
// (JSON) or as a PEM "PUBLIC KEY"; it must be a P-256 key (ES256), and a JWK
// must not carry the private part.
func ParseEARKey(b []byte) (*ecdsa.PublicKey, error) {
	var pub any
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		k, err := jwk.ParseKey(t)
		if err != nil {
			return nil, fmt.Errorf("psa: EAR key JWK: %w", err)
		}
		if _, ok := k.(jwk.ECDSAPrivateKey); ok {
			return nil, errors.New("psa: EAR key JWK is a private key, want the public key only")
		}
		var raw ecdsa.PublicKey
		if err := jwk.Export(k, &raw); err != nil {
			return nil, fmt.Errorf("psa: EAR key JWK: %w", err)
		}
		pub = &raw
	} else {
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "PUBLIC KEY" {
			return nil, errors.New("psa: EAR key is neither a JWK nor a PEM PUBLIC KEY")
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("psa: EAR key PEM: %w", err)
		}
		pub = k
	}
	ek, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("psa: EAR key is a %T, want an ECDSA P-256 key", pub)
	}
	if ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("psa: EAR key is on %s, want P-256", ek.Curve.Params().Name)
	}
	return ek, nil
}

// EARCheck is what an EAR must satisfy besides a valid signature.
type EARCheck struct {
	// Key is the pinned verification key (ES256).
	Key *ecdsa.PublicKey
	// Nonce is the session nonce the EAR's eat_nonce must carry.
	Nonce []byte
	// Now is the time of the check.
	Now time.Time
	// MaxAge is how old iat may be; iat may be at most Skew in the future.
	MaxAge, Skew time.Duration
}

// CheckEAR verifies the EAR JWT under c.Key and checks its profile, its
// eat_nonce (base64url, Veraison writes it with padding; accepted with or
// without) against c.Nonce, its iat against c.Now, and that it has at least
// one submod. It does not judge the status: see SubmodStatus.
func CheckEAR(jwt []byte, c EARCheck) (*ear.AttestationResult, error) {
	if c.Key == nil {
		return nil, errors.New("psa: EAR check: no pinned key")
	}
	var ar ear.AttestationResult
	if err := ar.Verify(jwt, jwa.ES256(), c.Key); err != nil {
		return nil, fmt.Errorf("psa: EAR: %w", err)
	}
	if ar.Profile == nil || *ar.Profile != ear.EatProfile {
		return nil, fmt.Errorf("psa: EAR eat_profile is %v, want %q", deref(ar.Profile), ear.EatProfile)
	}
	if ar.Nonce == nil {
		return nil, errors.New("psa: EAR has no eat_nonce")
	}
	got, err := decodeB64URL(*ar.Nonce)
	if err != nil {
		return nil, fmt.Errorf("psa: EAR eat_nonce %q: %w", *ar.Nonce, err)
	}
	if !bytes.Equal(got, c.Nonce) {
		return nil, fmt.Errorf("psa: EAR eat_nonce is %x, want %x", got, c.Nonce)
	}
	if ar.IssuedAt == nil {
		return nil, errors.New("psa: EAR has no iat")
	}
	iat := time.Unix(*ar.IssuedAt, 0)
	if iat.After(c.Now.Add(c.Skew)) {
		return nil, fmt.Errorf("psa: EAR iat %s is after %s", iat.UTC(), c.Now.Add(c.Skew).UTC())
	}
	if iat.Before(c.Now.Add(-c.MaxAge)) {
		return nil, fmt.Errorf("psa: EAR iat %s is older than %s", iat.UTC(), c.MaxAge)
	}
	if len(ar.Submods) == 0 {
		return nil, errors.New("psa: EAR has no submods")
	}
	return &ar, nil
}

// SubmodStatus returns the ear.status of the named submod, or an error that
// lists the submods the EAR has.
func SubmodStatus(ar *ear.AttestationResult, name string) (ear.TrustTier, error) {
	a, ok := ar.Submods[name]
	if !ok {
		names := make([]string, 0, len(ar.Submods))
		for n := range ar.Submods {
			names = append(names, n)
		}
		sort.Strings(names)
		return ear.TrustTierNone, fmt.Errorf("psa: EAR has no submod %q (has %s)", name, strings.Join(names, ", "))
	}
	if a.Status == nil {
		return ear.TrustTierNone, fmt.Errorf("psa: EAR submod %q has no ear.status", name)
	}
	return *a.Status, nil
}

func decodeB64URL(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.URLEncoding.Strict().DecodeString(s)
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}
