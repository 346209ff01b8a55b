package tsm

import "errors"

// TDXVerifier appraises TDX quotes. Placeholder: the TDX engineer replaces this
// file with the real appraisal (signature chain to the Intel root, REPORTDATA).
type TDXVerifier struct{}

// TDXClaims are the measurements of an appraised TDX quote (placeholder).
type TDXClaims struct{}

// Appraise rejects every quote until the real appraisal lands.
func (v *TDXVerifier) Appraise(quote, d []byte) (*TDXClaims, error) {
	return nil, errors.New("tdx: appraisal not implemented yet")
}
