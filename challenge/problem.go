package challenge

import (
	"errors"
	"fmt"
)

// ProblemType is an ACME error type (RFC 8555 §6.7, draft-ietf-acme-device-attest).
type ProblemType string

// The problem types a cmw answer can end in (docs/protocol.md §1.6 and §7).
const (
	// BadAttestationStatement: the attestation object, the bundle, the kc, the
	// evidence, the binding or the appraisal failed.
	BadAttestationStatement ProblemType = "urn:ietf:params:acme:error:badAttestationStatement"
	// RejectedIdentifier: a workload matched but may not have this identifier.
	RejectedIdentifier ProblemType = "urn:ietf:params:acme:error:rejectedIdentifier"
	// ServerInternal: the verifier could not be reached or answered nonsense;
	// the challenge stays retryable.
	ServerInternal ProblemType = "urn:ietf:params:acme:error:serverInternal"
)

// Problem is a failed check with the ACME problem it maps to. Detail names the
// check that failed; Err keeps the cause for logs and errors.Is.
type Problem struct {
	Type   ProblemType
	Detail string
	Err    error
}

// Error returns the problem's detail.
func (p *Problem) Error() string { return p.Detail }

// Unwrap returns the cause.
func (p *Problem) Unwrap() error { return p.Err }

// Retryable reports whether the client may answer the same challenge again:
// only when the failure was ours (serverInternal), never for a bad answer.
func (p *Problem) Retryable() bool { return p.Type == ServerInternal }

// BadAttestation wraps err as a badAttestationStatement problem whose detail
// is err's text.
func BadAttestation(err error) *Problem {
	return &Problem{Type: BadAttestationStatement, Detail: err.Error(), Err: err}
}

// Rejected makes a rejectedIdentifier problem.
func Rejected(format string, args ...any) *Problem {
	err := fmt.Errorf(format, args...)
	return &Problem{Type: RejectedIdentifier, Detail: err.Error(), Err: err}
}

// Internal wraps err as a retryable serverInternal problem.
func Internal(err error) *Problem {
	return &Problem{Type: ServerInternal, Detail: err.Error(), Err: err}
}

// AsProblem returns the Problem in err's chain, or, for any other error, a
// badAttestationStatement problem: an error nobody classified is the answer's
// fault, so the challenge fails closed.
func AsProblem(err error) *Problem {
	if err == nil {
		return nil
	}
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return BadAttestation(err)
}
