package sim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha3"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/testing/data"
)

// SNPProductLine is the AMD product line the simulated SEV-SNP platform
// claims: Milan, stepping B1 (go-sev-guest's default product).
const SNPProductLine = "Milan"

// The validity of every certificate of the simulated chain: 2024-01-01 for 25
// years. Fixed, so that the chain is the same in every process.
const (
	snpChainNotBefore = 1704067200 // 2024-01-01T00:00:00Z
	snpChainYears     = 25
)

// SNPKeys are the private keys of a simulated AMD signing chain: the ARK signs
// the ASK and the ASVK, which sign the VCEK and the VLEK, which sign reports.
type SNPKeys struct {
	ARK, ASK, ASVK *rsa.PrivateKey
	VCEK, VLEK     *ecdsa.PrivateKey
}

// TestSNPKeys returns go-sev-guest's fixed test keys (go-sev-guest/testing/data),
// the keys of SNPTestRoots. They are public: anything signed by them proves
// nothing outside tests and demos.
func TestSNPKeys() *SNPKeys {
	return &SNPKeys{
		ARK: data.ARKPrivateKey, ASK: data.ASKPrivateKey, ASVK: data.ASVKPrivateKey,
		VCEK: data.VCEKPrivateKey, VLEK: data.VLEKPrivateKey,
	}
}

// NewSNPKeys generates a fresh chain of keys, for a platform whose reports must
// not verify under SNPTestRoots (a "wrong root"). The RSA keys are 2048 bits,
// not AMD's 4096, to keep tests fast; the VCEK and VLEK are P-384 as AMD's.
func NewSNPKeys() (*SNPKeys, error) {
	k := &SNPKeys{}
	for _, p := range []**rsa.PrivateKey{&k.ARK, &k.ASK, &k.ASVK} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("sim: generating an RSA key: %w", err)
		}
		*p = key
	}
	for _, p := range []**ecdsa.PrivateKey{&k.VCEK, &k.VLEK} {
		key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("sim: generating an ECDSA key: %w", err)
		}
		*p = key
	}
	return k, nil
}

// SNPTestRoots returns the trust anchors of the simulated SEV-SNP platform
// (TestSNPKeys): one root for SNPProductLine with its ARK, ASK and ASVK. Every
// process gets the same certificates, byte for byte. Pass them in
// tsm.SNPOptions.Roots, or write root.PEM() into a policy file, to appraise
// simulated reports; nothing trusts them by default.
func SNPTestRoots() ([]tsm.SNPRoot, error) {
	r, err := snpRoot(TestSNPKeys())
	if err != nil {
		return nil, err
	}
	return []tsm.SNPRoot{r}, nil
}

// SNPTestRootsPEM returns SNPTestRoots as PEM (ASK, ASVK, ARK), the form
// tsm.ParseSNPRoot reads.
func SNPTestRootsPEM() ([]byte, error) {
	roots, err := SNPTestRoots()
	if err != nil {
		return nil, err
	}
	return roots[0].PEM(), nil
}

// amdName is the distinguished name AMD's Key Distribution Service uses, which
// go-sev-guest's verify checks.
func amdName(commonName string, serial *big.Int) pkix.Name {
	return pkix.Name{
		Country:            []string{"US"},
		Locality:           []string{"Santa Clara"},
		Province:           []string{"CA"},
		Organization:       []string{"Advanced Micro Devices"},
		OrganizationalUnit: []string{"Engineering"},
		CommonName:         commonName,
		SerialNumber:       fmt.Sprintf("%x", serial),
	}
}

// snpCertTemplate is the common part of every certificate of the chain.
func snpCertTemplate(commonName string, serial int64) *x509.Certificate {
	notBefore := time.Unix(snpChainNotBefore, 0).UTC()
	sn := big.NewInt(serial)
	return &x509.Certificate{
		SerialNumber:       sn,
		Subject:            amdName(commonName, sn),
		NotBefore:          notBefore,
		NotAfter:           notBefore.AddDate(snpChainYears, 0, 0),
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
	}
}

// signCert issues template for pub under parent and signer. The PSS salt is
// drawn from a SHAKE256 stream keyed by the subject name, so that the same keys
// give the same certificate bytes in every process.
func signCert(template, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	if parent == nil {
		parent = template
	}
	salt := sha3.NewSHAKE256()
	salt.Write([]byte("attest-acme sim SEV-SNP certificate salt: " + template.Subject.String()))
	der, err := x509.CreateCertificate(salt, template, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("sim: issuing %s: %w", template.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sim: parsing %s: %w", template.Subject.CommonName, err)
	}
	return cert, nil
}

// snpRoot issues the ARK (self-signed), the ASK and the ASVK of keys, shaped
// as AMD's for SNPProductLine.
func snpRoot(keys *SNPKeys) (tsm.SNPRoot, error) {
	r := tsm.SNPRoot{ProductLine: SNPProductLine}
	ca := func(cn string, usage x509.KeyUsage, crl abi.ReportSigner) *x509.Certificate {
		t := snpCertTemplate(cn, 0xc0dec0de)
		t.IsCA, t.BasicConstraintsValid = true, true
		t.KeyUsage = usage
		t.CRLDistributionPoints = []string{kds.CrlLinkByKey(SNPProductLine, crl)}
		return t
	}
	var err error
	ark := ca("ARK-"+SNPProductLine, x509.KeyUsageCertSign|x509.KeyUsageCRLSign, abi.VcekReportSigner)
	if r.ARK, err = signCert(ark, nil, keys.ARK.Public(), keys.ARK); err != nil {
		return r, err
	}
	ask := ca("SEV-"+SNPProductLine, x509.KeyUsageCertSign, abi.VcekReportSigner)
	if r.ASK, err = signCert(ask, r.ARK, keys.ASK.Public(), keys.ARK); err != nil {
		return r, err
	}
	asvk := ca("SEV-VLEK-"+SNPProductLine, x509.KeyUsageCertSign, abi.VlekReportSigner)
	if r.ASVK, err = signCert(asvk, r.ARK, keys.ASVK.Public(), keys.ARK); err != nil {
		return r, err
	}
	return r, nil
}

// snpEndorsementCert issues the VCEK or VLEK certificate for reports at
// reported TCB tcb: KDS extensions (AMD 57230 §3) for the product name, the TCB
// parts, and the HWID (VCEK, the chip ID) or CSP_ID (VLEK).
func snpEndorsementCert(root tsm.SNPRoot, keys *SNPKeys, signer abi.ReportSigner, tcb uint64, chipID []byte) (*x509.Certificate, error) {
	parts := kds.DecomposeTCBVersion(kds.TCBVersion(tcb))
	productName := kds.ProductName(abi.DefaultSevProduct())
	var (
		issuer *x509.Certificate
		issKey *rsa.PrivateKey
		pub    crypto.PublicKey
		id     pkix.Extension
		err    error
	)
	switch signer {
	case abi.VcekReportSigner:
		issuer, issKey, pub = root.ASK, keys.ASK, keys.VCEK.Public()
		id.Id = kds.OidHwid
		id.Value, err = asn1.Marshal(chipID)
	case abi.VlekReportSigner:
		issuer, issKey, pub = root.ASVK, keys.ASVK, keys.VLEK.Public()
		productName = SNPProductLine // a VLEK's product name has no stepping
		id.Id = kds.OidCspID
		id.Value, err = asn1.MarshalWithParams("attest-acme-sim", "ia5")
	default:
		return nil, fmt.Errorf("sim: no endorsement key %v", signer)
	}
	if err != nil {
		return nil, fmt.Errorf("sim: %v certificate extension: %w", signer, err)
	}
	exts := []pkix.Extension{id}
	add := func(oid asn1.ObjectIdentifier, v any, params string) {
		if err != nil {
			return
		}
		var b []byte
		b, err = asn1.MarshalWithParams(v, params)
		exts = append(exts, pkix.Extension{Id: oid, Value: b})
	}
	add(kds.OidStructVersion, 0, "")
	add(kds.OidProductName1, productName, "ia5")
	add(kds.OidBlSpl, int(parts.BlSpl), "")
	add(kds.OidTeeSpl, int(parts.TeeSpl), "")
	add(kds.OidSnpSpl, int(parts.SnpSpl), "")
	add(kds.OidSpl4, int(parts.Spl4), "")
	add(kds.OidSpl5, int(parts.Spl5), "")
	add(kds.OidSpl6, int(parts.Spl6), "")
	add(kds.OidSpl7, int(parts.Spl7), "")
	add(kds.OidUcodeSpl, int(parts.UcodeSpl), "")
	if err != nil {
		return nil, fmt.Errorf("sim: %v certificate extension: %w", signer, err)
	}
	t := snpCertTemplate("SEV-"+signer.String(), 0)
	t.ExtraExtensions = exts
	return signCert(t, issuer, pub, issKey)
}
