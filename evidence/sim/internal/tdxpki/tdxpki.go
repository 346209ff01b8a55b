package tdxpki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/google/go-tdx-guest/pcs"
)

// Common names go-tdx-guest's verify package requires, and the organisation
// that marks every certificate of this package as a test certificate.
const (
	RootCN         = "Intel SGX Root CA"
	IntermediateCN = "Intel SGX PCK Platform CA"
	PCKCN          = "Intel SGX PCK Certificate"
	Organization   = "attest-acme test PKI (NOT Intel)"
)

// File names of the committed test PKI (evidence/sim/testdata).
const (
	// FileRoot holds the root certificate (PEM), the value a policy trusts.
	FileRoot = "tdx_test_root.pem"
	// FileChain holds PCK leaf || intermediate || root (PEM), exactly the
	// bytes a quote carries as its PCK certificate chain.
	FileChain = "tdx_test_pck_chain.pem"
	// FilePCKKey holds the PCK leaf's private key (PKCS #8 PEM).
	FilePCKKey = "tdx_test_pck_key.pem"
)

// Default validity of a generated chain. The committed chain must stay valid
// for as long as the project's tests and demos run against a real clock.
var (
	DefaultNotBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	DefaultNotAfter  = time.Date(2075, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Values written into the test PCK certificate's SGX extensions.
var (
	// TestFMSPC is the FMSPC of the test PCK certificate (the value Intel uses
	// for a Sapphire Rapids server platform; only its shape matters here).
	TestFMSPC = []byte{0x50, 0x80, 0x6f, 0x00, 0x00, 0x00}
	// TestCPUSVN holds the 16 SGX TCB component SVNs, and is also CPUSVN.
	TestCPUSVN = []byte{3, 3, 2, 2, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0}
	testPCEID  = []byte{0, 0}
	oidSGXType = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 5}
)

const (
	// TestPCESVN is the PCE SVN of the test PCK certificate.
	TestPCESVN  = 11
	sgxTypeStd  = asn1.Enumerated(0) // Standard
	ppidSize    = 16
	serialBytes = 16
)

// PKI is a PCK signing chain and the PCK leaf's private key.
type PKI struct {
	Root, Intermediate, PCK *x509.Certificate
	// PCKKey signs QE reports.
	PCKKey *ecdsa.PrivateKey
	// ChainPEM is PCK || intermediate || root, as a quote carries it.
	ChainPEM []byte
}

// The SGX extensions (Intel SGX PCK Certificate and CRL Profile §3.5) as Go
// values for encoding/asn1: SGXExtensions ::= SEQUENCE OF SEQUENCE { OID, value }.
type (
	sgxOctets struct {
		ID    asn1.ObjectIdentifier
		Value []byte
	}
	sgxInt struct {
		ID    asn1.ObjectIdentifier
		Value int
	}
	sgxEnum struct {
		ID    asn1.ObjectIdentifier
		Value asn1.Enumerated
	}
	sgxTCB struct {
		ID         asn1.ObjectIdentifier
		Components []any // sgxInt (16 component SVNs, PCESVN) and sgxOctets (CPUSVN)
	}
)

// sgxExtensions encodes the value of the SGX extensions of a PCK certificate.
func sgxExtensions(ppid []byte) ([]byte, error) {
	comps := make([]any, 0, len(TestCPUSVN)+2)
	for i, svn := range TestCPUSVN {
		comps = append(comps, sgxInt{ID: append(append(asn1.ObjectIdentifier{}, pcs.OidTCB...), i+1), Value: int(svn)})
	}
	comps = append(comps,
		sgxInt{ID: pcs.OidPCESvn, Value: TestPCESVN},
		sgxOctets{ID: pcs.OidCPUSvn, Value: TestCPUSVN})
	return asn1.Marshal([]any{
		sgxOctets{ID: pcs.OidPPID, Value: ppid},
		sgxTCB{ID: pcs.OidTCB, Components: comps},
		sgxOctets{ID: pcs.OidPCEID, Value: testPCEID},
		sgxOctets{ID: pcs.OidFMSPC, Value: TestFMSPC},
		sgxEnum{ID: oidSGXType, Value: sgxTypeStd},
	})
}

func name(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{Organization}}
}

func serial() (*big.Int, error) {
	b := make([]byte, serialBytes)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	b[0] &= 0x7f
	b[0] |= 0x01 // positive, full length
	return new(big.Int).SetBytes(b), nil
}

// Generate creates a fresh chain valid from notBefore to notAfter.
func Generate(notBefore, notAfter time.Time) (*PKI, error) {
	var keys [3]*ecdsa.PrivateKey
	var serials [3]*big.Int
	for i := range keys {
		var err error
		if keys[i], err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, fmt.Errorf("tdxpki: key: %w", err)
		}
		if serials[i], err = serial(); err != nil {
			return nil, fmt.Errorf("tdxpki: serial: %w", err)
		}
	}
	ppid := make([]byte, ppidSize)
	if _, err := rand.Read(ppid); err != nil {
		return nil, fmt.Errorf("tdxpki: PPID: %w", err)
	}
	sgx, err := sgxExtensions(ppid)
	if err != nil {
		return nil, fmt.Errorf("tdxpki: SGX extensions: %w", err)
	}
	templates := []*x509.Certificate{
		{
			SerialNumber: serials[0], Subject: name(RootCN),
			NotBefore: notBefore, NotAfter: notAfter,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true, IsCA: true, MaxPathLen: 1,
			SignatureAlgorithm: x509.ECDSAWithSHA256,
		},
		{
			SerialNumber: serials[1], Subject: name(IntermediateCN),
			NotBefore: notBefore, NotAfter: notAfter,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true, IsCA: true, MaxPathLen: 0, MaxPathLenZero: true,
			SignatureAlgorithm: x509.ECDSAWithSHA256,
		},
		{
			// Six extensions, as verify requires: key usage, basic
			// constraints, subject and authority key identifiers, CRL
			// distribution point, SGX extensions.
			SerialNumber: serials[2], Subject: name(PCKCN),
			NotBefore: notBefore, NotAfter: notAfter,
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
			BasicConstraintsValid: true,
			SubjectKeyId:          []byte("attest-acme test PCK"),
			CRLDistributionPoints: []string{"https://attest-acme.invalid/tdx-test-pck.crl"},
			ExtraExtensions:       []pkix.Extension{{Id: pcs.OidSgxExtension, Value: sgx}},
			SignatureAlgorithm:    x509.ECDSAWithSHA256,
		},
	}
	var certs [3]*x509.Certificate
	for i, tmpl := range templates {
		parent, signer := tmpl, keys[0]
		if i > 0 {
			parent, signer = certs[i-1], keys[i-1]
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &keys[i].PublicKey, signer)
		if err != nil {
			return nil, fmt.Errorf("tdxpki: certificate %q: %w", tmpl.Subject.CommonName, err)
		}
		if certs[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("tdxpki: certificate %q: %w", tmpl.Subject.CommonName, err)
		}
	}
	p := &PKI{Root: certs[0], Intermediate: certs[1], PCK: certs[2], PCKKey: keys[2]}
	p.ChainPEM = chainPEM(p.PCK, p.Intermediate, p.Root)
	return p, nil
}

func chainPEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}) // writing to a bytes.Buffer cannot fail
	}
	return b.Bytes()
}

// RootPEM returns the root certificate as PEM.
func (p *PKI) RootPEM() []byte { return chainPEM(p.Root) }

// Files returns the committed form of the PKI, by file name.
func (p *PKI) Files() (map[string][]byte, error) {
	key, err := x509.MarshalPKCS8PrivateKey(p.PCKKey)
	if err != nil {
		return nil, fmt.Errorf("tdxpki: PCK key: %w", err)
	}
	return map[string][]byte{
		FileRoot:   p.RootPEM(),
		FileChain:  p.ChainPEM,
		FilePCKKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
	}, nil
}

// Parse loads a PKI from its committed form: the chain (PCK, intermediate,
// root, in that order, nothing else) and the PCK key, which must be the
// private key of the PCK certificate.
func Parse(chain, pckKey []byte) (*PKI, error) {
	var certs []*x509.Certificate
	rest := chain
	for len(bytes.TrimSpace(rest)) > 0 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil || b.Type != "CERTIFICATE" {
			return nil, errors.New("tdxpki: chain holds something other than CERTIFICATE PEM blocks")
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tdxpki: chain certificate %d: %w", len(certs), err)
		}
		certs = append(certs, c)
	}
	if len(certs) != 3 {
		return nil, fmt.Errorf("tdxpki: chain has %d certificates, want 3 (PCK, intermediate, root)", len(certs))
	}
	b, _ := pem.Decode(pckKey)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("tdxpki: PCK key is not a PRIVATE KEY PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tdxpki: PCK key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("tdxpki: PCK key is a %T, want an ECDSA P-256 key", k)
	}
	if !key.PublicKey.Equal(certs[0].PublicKey) {
		return nil, errors.New("tdxpki: PCK key does not match the PCK certificate")
	}
	return &PKI{PCK: certs[0], Intermediate: certs[1], Root: certs[2], PCKKey: key, ChainPEM: chainPEM(certs...)}, nil
}
