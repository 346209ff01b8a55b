package evidence

import (
	"crypto"
	_ "crypto/sha256" // registers SHA-256 for crypto.Hash
	_ "crypto/sha512" // registers SHA-512 for crypto.Hash
	"fmt"
)

// Platform evidence media types (docs/protocol.md §4 and §5).
const (
	// MediaTypeTSMReport is a configfs-tsm report: {"provider", "outblob", ? "auxblob"}.
	MediaTypeTSMReport = "application/vnd.veraison.tsm-report+cbor"
	// MediaTypeTPMQuote is a TPM 2.0 quote: {"ak", "quoted", "sig", "pcrs", ? "akchain"}.
	MediaTypeTPMQuote = "application/vnd.attest-acme.tpm-quote+cbor"
	// MediaTypePSAToken is a PSA attestation token, as Veraison names it.
	MediaTypePSAToken = `application/eat-cwt; profile="http://arm.com/psa/2.0.0"`
	// MediaTypeCCAToken is an Arm CCA attestation token, as Veraison names it.
	MediaTypeCCAToken = `application/eat-collection; profile="http://arm.com/CCA-SSD/1.0.0"`
)

// BindingHashFor returns the hash that D is computed with for evidence of the
// given media type (docs/protocol.md §3): SHA-256 for a TPM quote, whose
// qualifyingData holds at most a SHA-256 digest on many TPMs, and SHA-512 for
// everything with a 64-byte report-data field.
func BindingHashFor(mediaType string) (crypto.Hash, error) {
	switch mediaType {
	case MediaTypeTPMQuote:
		return crypto.SHA256, nil
	case MediaTypeTSMReport, MediaTypePSAToken, MediaTypeCCAToken:
		return crypto.SHA512, nil
	default:
		return 0, fmt.Errorf("platform media type %q is not supported", mediaType)
	}
}

// Binding computes D = H(kc) with hash h.
func Binding(h crypto.Hash, kc []byte) []byte {
	hh := h.New()
	hh.Write(kc)
	return hh.Sum(nil)
}
