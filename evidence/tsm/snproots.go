package tsm

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify/trust"
)

// SNPRoot is one set of SEV-SNP trust anchors: the AMD Root Key certificate of
// one product line and the intermediates it certifies. A VCEK must chain to the
// ASK, a VLEK to the ASVK.
type SNPRoot struct {
	// ProductLine is the AMD product line: "Milan", "Genoa" or "Turin"
	// (taken from the ARK's common name, "ARK-<line>").
	ProductLine string
	// ARK is the self-signed AMD Root Key certificate.
	ARK *x509.Certificate
	// ASK is the AMD SEV Key certificate, which certifies VCEKs; nil if this
	// root trusts no VCEK.
	ASK *x509.Certificate
	// ASVK is the AMD SEV VLEK Key certificate, which certifies VLEKs; nil if
	// this root trusts no VLEK.
	ASVK *x509.Certificate
}

// maxRootPEM bounds a trust-anchor file.
const maxRootPEM = 64 << 10

// ParseSNPRoot reads trust anchors from PEM certificates in AMD's Key
// Distribution Service cert_chain format (https://kdsintf.amd.com/vcek/v1/<line>/cert_chain:
// the ASK, then the ARK), or several such files concatenated (the VCEK and the
// VLEK cert_chain of one product line). It requires exactly one ARK
// (self-signed, common name "ARK-<line>"), an ASK ("SEV-<line>") and/or an
// ASVK ("SEV-VLEK-<line>") signed by it, and nothing else.
func ParseSNPRoot(pemData []byte) (SNPRoot, error) {
	var r SNPRoot
	if len(pemData) > maxRootPEM {
		return r, fmt.Errorf("sev-snp roots: %d bytes of PEM, over the limit of %d", len(pemData), maxRootPEM)
	}
	var inter []*x509.Certificate
	rest := pemData
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return r, fmt.Errorf("sev-snp roots: PEM block of type %q, want CERTIFICATE", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return r, fmt.Errorf("sev-snp roots: %w", err)
		}
		if !snpSelfSigned(cert) {
			inter = append(inter, cert)
			continue
		}
		if r.ARK != nil && !bytes.Equal(r.ARK.Raw, cert.Raw) {
			return r, errors.New("sev-snp roots: more than one ARK (self-signed certificate)")
		}
		r.ARK = cert
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return r, errors.New("sev-snp roots: trailing data after the last PEM certificate")
	}
	if r.ARK == nil {
		return r, errors.New("sev-snp roots: no ARK (self-signed certificate)")
	}
	line, ok := strings.CutPrefix(r.ARK.Subject.CommonName, "ARK-")
	if _, err := kds.ParseProductLine(line); !ok || err != nil {
		return r, fmt.Errorf("sev-snp roots: ARK common name %q is not ARK-<Milan|Genoa|Turin>", r.ARK.Subject.CommonName)
	}
	r.ProductLine = line
	for _, c := range inter {
		var slot **x509.Certificate
		switch c.Subject.CommonName {
		case "SEV-" + line:
			slot = &r.ASK
		case "SEV-VLEK-" + line:
			slot = &r.ASVK
		default:
			return r, fmt.Errorf("sev-snp roots: certificate %q is neither the ASK (SEV-%s) nor the ASVK (SEV-VLEK-%s)", c.Subject.CommonName, line, line)
		}
		if *slot != nil && !bytes.Equal((*slot).Raw, c.Raw) {
			return r, fmt.Errorf("sev-snp roots: two different %q certificates", c.Subject.CommonName)
		}
		if err := c.CheckSignatureFrom(r.ARK); err != nil {
			return r, fmt.Errorf("sev-snp roots: %q is not signed by %q: %w", c.Subject.CommonName, r.ARK.Subject.CommonName, err)
		}
		*slot = c
	}
	if r.ASK == nil && r.ASVK == nil {
		return r, fmt.Errorf("sev-snp roots: neither an ASK (SEV-%s) nor an ASVK (SEV-VLEK-%s) under the ARK", line, line)
	}
	return r, nil
}

// snpSelfSigned reports whether c names itself as issuer and its signature
// verifies under its own key.
func snpSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// PEM encodes r in the form ParseSNPRoot reads: the ASK, the ASVK, then the
// ARK, each present one as a CERTIFICATE block.
func (r SNPRoot) PEM() []byte {
	var out []byte
	for _, c := range []*x509.Certificate{r.ASK, r.ASVK, r.ARK} {
		if c != nil {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
	}
	return out
}

// AMDSNPRoots returns AMD's production trust anchors for every product line
// go-sev-guest embeds (Milan, Genoa, Turin), each with its ASK and ASVK. These
// are what an SNPVerifier trusts unless told otherwise.
func AMDSNPRoots() ([]SNPRoot, error) {
	bundles := []struct {
		line       string
		vcek, vlek []byte
	}{
		{"Milan", trust.AskArkMilanVcekBytes, trust.AskArkMilanVlekBytes},
		{"Genoa", trust.AskArkGenoaVcekBytes, trust.AskArkGenoaVlekBytes},
		{"Turin", trust.AskArkTurinVcekBytes, trust.AskArkTurinVlekBytes},
	}
	roots := make([]SNPRoot, 0, len(bundles))
	for _, b := range bundles {
		r, err := ParseSNPRoot(append(bytes.Clone(b.vcek), b.vlek...))
		if err != nil {
			return nil, fmt.Errorf("AMD %s roots embedded in go-sev-guest: %w", b.line, err)
		}
		if r.ProductLine != b.line {
			return nil, fmt.Errorf("AMD %s roots embedded in go-sev-guest name product line %s", b.line, r.ProductLine)
		}
		roots = append(roots, r)
	}
	return roots, nil
}

// snpTrustedRoots converts roots into go-sev-guest's form, keyed by product line.
// Each value is fresh: go-sev-guest may cache a CRL in it.
func snpTrustedRoots(roots []SNPRoot) map[string][]*trust.AMDRootCerts {
	m := make(map[string][]*trust.AMDRootCerts)
	for _, r := range roots {
		m[r.ProductLine] = append(m[r.ProductLine], &trust.AMDRootCerts{
			Product:      r.ProductLine,
			ProductLine:  r.ProductLine,
			ProductCerts: &trust.ProductCerts{Ark: r.ARK, Ask: r.ASK, Asvk: r.ASVK},
		})
	}
	return m
}
