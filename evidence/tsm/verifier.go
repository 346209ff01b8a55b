package tsm

import (
	"fmt"
)

// Options chooses the appraiser for each configfs-tsm provider. A nil
// appraiser rejects that provider's evidence.
type Options struct {
	// SNP appraises sev_guest reports.
	SNP *SNPVerifier
	// TDX appraises tdx_guest quotes.
	TDX *TDXVerifier
}

// Verifier appraises configfs-tsm report maps (evidence.MediaTypeTSMReport),
// dispatching by provider. It is safe for concurrent use if its appraisers are.
type Verifier struct {
	opts Options
}

// NewVerifier returns a Verifier with the appraisers of o.
func NewVerifier(o Options) *Verifier {
	return &Verifier{opts: o}
}

// Claims are the facts of an appraised report map: the provider and the claims
// of that provider's appraiser (exactly one of SNP and TDX is set).
type Claims struct {
	// Provider is the report map's provider (ProviderSNP, ProviderTDX).
	Provider string
	// SNP holds the claims of a sev_guest report.
	SNP *SNPClaims
	// TDX holds the claims of a tdx_guest quote.
	TDX *TDXClaims
}

// Appraise parses a report map strictly (ParseReport), checks that its outblob
// is of the provider's format, and has the provider's appraiser check the
// evidence against d, the expected D = SHA-512(KC).
func (v *Verifier) Appraise(evidence []byte, d []byte) (*Claims, error) {
	r, err := ParseReport(evidence)
	if err != nil {
		return nil, err
	}
	if looks := sniffProvider(r.OutBlob); looks != "" && looks != r.Provider {
		return nil, fmt.Errorf("tsm: provider is %s but the outblob is %s evidence", r.Provider, formatName(looks))
	}
	switch r.Provider {
	case ProviderSNP:
		if v.opts.SNP == nil {
			return nil, fmt.Errorf("tsm: no appraiser for %s configured", r.Provider)
		}
		c, err := v.opts.SNP.Appraise(r.OutBlob, r.AuxBlob, d)
		if err != nil {
			return nil, err
		}
		return &Claims{Provider: r.Provider, SNP: c}, nil
	case ProviderTDX:
		if v.opts.TDX == nil {
			return nil, fmt.Errorf("tsm: no appraiser for %s configured", r.Provider)
		}
		c, err := v.opts.TDX.Appraise(r.OutBlob, d)
		if err != nil {
			return nil, err
		}
		return &Claims{Provider: r.Provider, TDX: c}, nil
	default:
		// ParseReport admits only known providers; arm_cca_guest has no
		// appraiser in this package yet.
		return nil, fmt.Errorf("tsm: no appraiser for %s configured", r.Provider)
	}
}

// formatName names the evidence format of a provider for error messages.
func formatName(provider string) string {
	switch provider {
	case ProviderSNP:
		return "SEV-SNP attestation report"
	case ProviderTDX:
		return "TDX quote"
	case ProviderCCA:
		return "Arm CCA token"
	}
	return provider
}
