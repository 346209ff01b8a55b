package acmeclient

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-acme/lego/v4/acme"
)

// Identifier is an ACME identifier (RFC 8555 §7.1.4; draft-ietf-acme-device-attest
// adds the type "permanent-identifier").
type Identifier struct {
	// Type is "permanent-identifier" or "dns".
	Type string `json:"type"`
	// Value is the identifier itself.
	Value string `json:"value"`
}

// String writes the identifier as `permanent-identifier "vm-1"`.
func (i Identifier) String() string { return fmt.Sprintf("%s %q", i.Type, i.Value) }

// Identifier types this client orders.
const (
	TypePermanentIdentifier = "permanent-identifier"
	TypeDNS                 = "dns"
)

// ProblemError is an ACME problem document (RFC 8555 §6.7) the CA answered
// with, and the step the client was at.
type ProblemError struct {
	// Op is what the client was doing ("newOrder", "finalize", "device-attest-01
	// challenge for permanent-identifier \"vm-1\"").
	Op string
	// Type is the problem type, such as
	// "urn:ietf:params:acme:error:badAttestationStatement".
	Type string
	// Detail is the CA's explanation.
	Detail string
	// Status is the HTTP status of the answer; 0 for a problem found in a
	// challenge or order object.
	Status int
	// Subproblems are the per-identifier problems (RFC 8555 §6.7.1).
	Subproblems []Subproblem
}

// Subproblem is one entry of a problem's "subproblems".
type Subproblem struct {
	// Type is the subproblem's problem type.
	Type string
	// Detail is the CA's explanation.
	Detail string
	// Identifier is the identifier it concerns, if the CA named one.
	Identifier Identifier
}

// Error writes the step, the type, the detail and every subproblem on one line.
func (e *ProblemError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: the CA answered %s", e.Op, e.Type)
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	for _, s := range e.Subproblems {
		b.WriteString("; subproblem")
		if s.Identifier.Type != "" || s.Identifier.Value != "" {
			fmt.Fprintf(&b, " for %s", s.Identifier)
		}
		fmt.Fprintf(&b, ": %s", s.Type)
		if s.Detail != "" {
			fmt.Fprintf(&b, ": %s", s.Detail)
		}
	}
	return b.String()
}

// problemFrom converts lego's problem document.
func problemFrom(op string, p *acme.ProblemDetails) *ProblemError {
	e := &ProblemError{Op: op, Type: p.Type, Detail: p.Detail, Status: p.HTTPStatus}
	if e.Type == "" {
		e.Type = "about:blank" // RFC 7807 §4.2: a problem without a type
	}
	for _, s := range p.SubProblems {
		e.Subproblems = append(e.Subproblems, Subproblem{
			Type: s.Type, Detail: s.Detail,
			Identifier: Identifier{Type: s.Identifier.Type, Value: s.Identifier.Value},
		})
	}
	return e
}

// EvidenceError is a failure to produce the challenge answer: the attester
// failed, or its evidence does not fit the protocol's limits.
type EvidenceError struct {
	// Err is the cause.
	Err error
}

// Error says that the evidence could not be produced, and why.
func (e *EvidenceError) Error() string {
	return "platform evidence for the device-attest-01 answer: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *EvidenceError) Unwrap() error { return e.Err }

// RequestError is a request the client refuses before doing anything: an
// identifier, DNS name or key type it cannot order.
type RequestError struct {
	// Err says what is wrong.
	Err error
}

// Error says what is wrong with the request.
func (e *RequestError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *RequestError) Unwrap() error { return e.Err }

// StorageError is a failure to read or write the directory the client keeps
// its account and certificates in.
type StorageError struct {
	// Op says what was being done ("saving the certificate for \"vm-1\"").
	Op string
	// Err is the cause; it names the path.
	Err error
}

// Error says what could not be read or written.
func (e *StorageError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *StorageError) Unwrap() error { return e.Err }

// ErrNoCertificate is returned (wrapped) when the directory holds no
// certificate for the identifier asked for.
var ErrNoCertificate = errors.New("no certificate stored")

// wrap turns an error from lego or from the signed POST into one of this
// package's errors: a connection failure stays a *ConnError, a problem
// document becomes a *ProblemError, anything else is wrapped with op.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *ConnError
	if errors.As(err, &ce) {
		return ce
	}
	var pe *ProblemError
	if errors.As(err, &pe) {
		return pe
	}
	var p *acme.ProblemDetails
	if errors.As(err, &p) {
		return problemFrom(op, p)
	}
	return fmt.Errorf("%s: %w", op, err)
}
