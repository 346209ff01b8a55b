package verifier

import (
	"context"
	"errors"

	"github.com/attest-acme/attest-acme/evidence"
)

// Evidence is what a Verifier appraises: a media type and its bytes. It is
// evidence.Evidence, named here so that a relying party (the CA) needs only
// this package's API.
type Evidence = evidence.Evidence

// MediaTypeBundle is the media type of a bundle sent to a verifier.
const MediaTypeBundle = evidence.MediaTypeBundle

// Verifier appraises evidence and returns a signed attestation result (an
// EAR, docs/protocol.md §6). Implementations: the in-process appraiser
// (Appraiser), our verifier service and a Veraison deployment (Client).
//
// ev is either a bundle (evidence.MediaTypeBundle) with nonce N, or bare
// platform evidence with nonce D (docs/protocol.md §5).
//
// Evidence that verifies but fails the policy yields an EAR whose status is
// contraindicated, not an error. Evidence that cannot be verified at all
// (malformed, bad signature, wrong nonce) yields a *RejectedError. Any other
// error means the verifier could not do its job (unreachable, broken answer):
// the caller should treat it as retryable.
type Verifier interface {
	Appraise(ctx context.Context, ev evidence.Evidence, nonce []byte) ([]byte, error)
}

// RejectedError reports evidence that the verifier refused to appraise, with
// the check that failed.
type RejectedError struct {
	// Reason names the failed check, for the ACME problem's detail.
	Reason string
	// Err is the cause, when known locally.
	Err error
}

// Error returns the reason.
func (e *RejectedError) Error() string { return "evidence rejected: " + e.Reason }

// Unwrap returns the cause.
func (e *RejectedError) Unwrap() error { return e.Err }

// reject wraps err as a RejectedError.
func reject(err error) error {
	return &RejectedError{Reason: err.Error(), Err: err}
}

// IsRejected reports whether err says the evidence itself was refused.
func IsRejected(err error) bool {
	var r *RejectedError
	return errors.As(err, &r)
}
