package challenge

import (
	"context"
	"crypto"
	"fmt"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
)

// Answer is everything the client made to answer one device-attest-01 challenge.
type Answer struct {
	// Nonce is N = SHA-256(keyAuthorization).
	Nonce []byte
	// KC is the key-confirmation claims set.
	KC []byte
	// D is the binding value the platform signed: H(KC).
	D []byte
	// Evidence is the platform evidence over D.
	Evidence evidence.Evidence
	// Bundle is the CMW collection of KC and Evidence.
	Bundle []byte
	// AttObj is the attestation object around Bundle.
	AttObj []byte
	// Payload is the JWS payload to POST to the challenge URL.
	Payload []byte
}

// NewAnswer runs the client side of docs/protocol.md §1-4: keyAuthorization ->
// N -> kc naming pub -> D -> platform evidence from a -> bundle -> attestation
// object -> payload.
func NewAnswer(ctx context.Context, a evidence.Attester, keyAuthorization string, pub crypto.PublicKey, now time.Time) (*Answer, error) {
	ans := &Answer{Nonce: Nonce(keyAuthorization)}
	var err error
	if ans.KC, err = evidence.NewKC(pub, ans.Nonce, now); err != nil {
		return nil, err
	}
	ans.D = evidence.Binding(a.BindingHash(), ans.KC)
	if ans.Evidence, err = a.Attest(ctx, ans.D); err != nil {
		return nil, fmt.Errorf("platform evidence: %w", err)
	}
	if h, err := evidence.BindingHashFor(ans.Evidence.MediaType); err != nil {
		return nil, err
	} else if h != a.BindingHash() {
		return nil, fmt.Errorf("attester binds with %s but its evidence %q needs %s", a.BindingHash(), ans.Evidence.MediaType, h)
	}
	if ans.Bundle, err = (evidence.Bundle{KC: ans.KC, Platform: ans.Evidence}).Marshal(); err != nil {
		return nil, err
	}
	if ans.AttObj, err = EncodeAttObj(ans.Bundle); err != nil {
		return nil, err
	}
	if ans.Payload, err = EncodePayload(ans.AttObj); err != nil {
		return nil, err
	}
	return ans, nil
}
