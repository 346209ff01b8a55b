package harness

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"

	xacme "golang.org/x/crypto/acme"
)

// ACME problem types (RFC 8555 §6.7, draft-ietf-acme-device-attest).
const (
	ProblemBadAttestation     = "urn:ietf:params:acme:error:badAttestationStatement"
	ProblemRejectedIdentifier = "urn:ietf:params:acme:error:rejectedIdentifier"
	ProblemServerInternal     = "urn:ietf:params:acme:error:serverInternal"
	ProblemUnauthorized       = "urn:ietf:params:acme:error:unauthorized"
	ProblemOrderNotReady      = "urn:ietf:params:acme:error:orderNotReady"
	ProblemBadCSR             = "urn:ietf:params:acme:error:badCSR"
	ProblemMalformed          = "urn:ietf:params:acme:error:malformed"
)

// Problem returns the ACME problem in err's chain, or nil.
func Problem(err error) *xacme.Error {
	var ae *xacme.Error
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}

// ChallengeProblem returns the problem a challenge carries, or nil.
func ChallengeProblem(ch *xacme.Challenge) *xacme.Error {
	if ch == nil {
		return nil
	}
	return Problem(ch.Error)
}

// oidSubjectAltName is id-ce-subjectAltName (RFC 5280 §4.2.1.6).
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// VerifyChain checks that chain[0] chains to roots through the rest of
// chain. The attested certificate's subjectAltName holds only an otherName
// (the permanent-identifier) and is critical, which Go's x509 does not
// handle; it is marked handled on a copy first.
func VerifyChain(roots *x509.CertPool, chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return errors.New("harness: no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := *chain[0]
	leaf.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(leaf.UnhandledCriticalExtensions),
		func(oid asn1.ObjectIdentifier) bool { return oid.Equal(oidSubjectAltName) })
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("harness: the certificate does not chain to the CA's root: %w", err)
	}
	return nil
}
