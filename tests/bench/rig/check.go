package rig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"github.com/attest-acme/attest-acme/challenge"
	"slices"
	"time"

	"go.step.sm/crypto/x509util"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/verifier"
)

var oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}

// VerifyChain checks that chain's leaf chains to roots. An attested
// certificate's subjectAltName holds only an otherName and is critical,
// which Go's x509 does not handle, so it is marked handled first.
func VerifyChain(chain []*x509.Certificate, roots *x509.CertPool) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	leaf := *chain[0]
	leaf.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(leaf.UnhandledCriticalExtensions),
		func(oid asn1.ObjectIdentifier) bool { return oid.Equal(oidSAN) })
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the certificate does not chain to the CA's root: %w", err)
	}
	return nil
}

// CheckAttested checks what an attested certificate must be: it chains to
// roots; its key is the key the client generated, the kc's cnf key (the
// attested key) and the EAR's akpub; its permanent-identifier SAN is the
// identifier; and its id-pe-cmw extension holds an EAR that verifies under
// earKey for the challenge's nonce N.
func CheckAttested(iss *Issued, roots *x509.CertPool, earKey *ecdsa.PublicKey) (*verifier.Result, error) {
	if iss.Answer == nil {
		return nil, errors.New("not an attested issuance")
	}
	if err := VerifyChain(iss.Chain, roots); err != nil {
		return nil, err
	}
	leaf := iss.Chain[0]
	if !iss.Key.PublicKey.Equal(leaf.PublicKey) {
		return nil, errors.New("the certificate's key is not the client's key")
	}
	kc, err := evidence.ParseKC(iss.Answer.KC)
	if err != nil {
		return nil, fmt.Errorf("the kc sent: %w", err)
	}
	if k, ok := kc.Key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(leaf.PublicKey) {
		return nil, errors.New("the certificate's key is not the attested key (the kc's cnf)")
	}
	sans, err := x509util.ParseSubjectAlternativeNames(leaf)
	if err != nil {
		return nil, err
	}
	if len(sans.PermanentIdentifiers) != 1 || sans.PermanentIdentifiers[0].Identifier != iss.Identifier {
		return nil, fmt.Errorf("permanent-identifier SANs %+v, want exactly %q", sans.PermanentIdentifiers, iss.Identifier)
	}
	token, err := challenge.EARFromCertificate(leaf)
	if err != nil {
		return nil, fmt.Errorf("id-pe-cmw: %w", err)
	}
	// Check compares the EAR's akpub with the key given: the certificate's.
	res, err := (&verifier.Checker{Key: earKey, MaxAge: 24 * time.Hour}).Check(token, iss.Answer.Nonce, leaf.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("the EAR in the certificate: %w", err)
	}
	if res.Workload == "" {
		return nil, errors.New("the EAR names no workload")
	}
	return res, nil
}
