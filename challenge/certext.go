package challenge

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"

	"github.com/veraison/cmw"
)

// MediaTypeEAR is the media type of the EAR record in an attested
// certificate's id-pe-cmw extension (docs/protocol.md §1.8), exactly.
const MediaTypeEAR = `application/eat+jwt; eat_profile="tag:github.com,2023:veraison/ear"`

// NewEARExtension returns the non-critical id-pe-cmw extension
// (1.3.6.1.5.5.7.1.35, CBOR choice) holding ear as the CMW record
// [MediaTypeEAR, ear, 8 (attestation results)].
func NewEARExtension(ear []byte) (pkix.Extension, error) {
	m, err := cmw.NewMonad(MediaTypeEAR, ear, cmw.AttestationResults)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("id-pe-cmw: %w", err)
	}
	ext, err := m.EncodeX509Extension(cmw.ChoiceCbor, false)
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("id-pe-cmw: %w", err)
	}
	return *ext, nil
}

// EARFromCertificate returns the EAR (a signed JWT) an attested certificate
// carries: the value of the CMW record in its one non-critical id-pe-cmw
// extension, whose media type must be MediaTypeEAR and indicator attestation
// results. It does not verify the EAR.
func EARFromCertificate(cert *x509.Certificate) ([]byte, error) {
	var found *pkix.Extension
	for i, e := range cert.Extensions {
		if !e.Id.Equal(cmw.OidExtCmw) {
			continue
		}
		if found != nil {
			return nil, errors.New("id-pe-cmw: the extension appears twice")
		}
		found = &cert.Extensions[i]
	}
	if found == nil {
		return nil, errors.New("id-pe-cmw: the certificate has no such extension")
	}
	if found.Critical {
		return nil, errors.New("id-pe-cmw: the extension is critical, want non-critical")
	}
	c, err := cmw.DecodeX509Extension(*found)
	if err != nil {
		return nil, fmt.Errorf("id-pe-cmw: %w", err)
	}
	if c.GetKind() != cmw.KindMonad {
		return nil, fmt.Errorf("id-pe-cmw: a CMW %s, want a record", c.GetKind())
	}
	mt, err := c.GetMonadType()
	if err != nil {
		return nil, fmt.Errorf("id-pe-cmw: %w", err)
	}
	if mt != MediaTypeEAR {
		return nil, fmt.Errorf("id-pe-cmw: media type %q, want %q", mt, MediaTypeEAR)
	}
	ind, err := c.GetMonadIndicator()
	if err != nil {
		return nil, fmt.Errorf("id-pe-cmw: %w", err)
	}
	if ind != cmw.AttestationResults {
		return nil, fmt.Errorf("id-pe-cmw: indicator %d, want %d (attestation results)", ind, cmw.AttestationResults)
	}
	v, err := c.GetMonadValue()
	if err != nil {
		return nil, fmt.Errorf("id-pe-cmw: %w", err)
	}
	if len(v) == 0 {
		return nil, errors.New("id-pe-cmw: the EAR is empty")
	}
	return v, nil
}
