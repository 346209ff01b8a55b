package challenge

import (
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
)

// Decoded is a bundle whose kc has been checked against the expected nonce:
// what appraisal needs (the platform evidence and D) and what the CA must
// remember (the cnf key).
type Decoded struct {
	// Bundle is the decoded bundle.
	Bundle *evidence.Bundle
	// KC is the parsed kc; KC.Key is the key the certificate may certify.
	KC *evidence.KC
	// D is H(KC) with the hash the platform media type calls for; the
	// platform evidence must carry it.
	D []byte
}

// DecodeBundle parses a bundle, checks that the kc's eat_nonce equals n and
// that its iat is fresh at now, and computes D. Every error is a
// badAttestationStatement Problem whose detail names the failed check.
func DecodeBundle(bundle, n []byte, now time.Time) (*Decoded, error) {
	b, err := evidence.ParseBundle(bundle)
	if err != nil {
		return nil, BadAttestation(err)
	}
	kc, err := evidence.ParseKC(b.KC)
	if err != nil {
		return nil, BadAttestation(err)
	}
	if subtle.ConstantTimeCompare(kc.Nonce, n) != 1 {
		return nil, BadAttestation(fmt.Errorf("kc: eat_nonce %s does not match the challenge's nonce %s",
			hex.EncodeToString(kc.Nonce), hex.EncodeToString(n)))
	}
	if err := kc.CheckFreshness(now); err != nil {
		return nil, BadAttestation(err)
	}
	h, err := evidence.BindingHashFor(b.Platform.MediaType)
	if err != nil {
		return nil, BadAttestation(fmt.Errorf("bundle: platform record: %w", err))
	}
	return &Decoded{Bundle: b, KC: kc, D: evidence.Binding(h, b.KC)}, nil
}

// DecodePayload runs the server side of docs/protocol.md §1.5 for one
// challenge: payload -> attestation object -> bundle -> kc checked against
// N = SHA-256(keyAuthorization). It returns the attestation object's bundle
// bytes too, for a verifier that appraises the bundle itself.
func DecodePayload(p []byte, keyAuthorization string, now time.Time) (*Decoded, []byte, error) {
	attObj, err := ParsePayload(p)
	if err != nil {
		return nil, nil, BadAttestation(err)
	}
	bundle, err := ParseAttObj(attObj)
	if err != nil {
		return nil, nil, BadAttestation(err)
	}
	d, err := DecodeBundle(bundle, Nonce(keyAuthorization), now)
	if err != nil {
		return nil, nil, err
	}
	return d, bundle, nil
}
