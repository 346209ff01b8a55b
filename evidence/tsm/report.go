package tsm

import (
	"errors"
	"fmt"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/fxamacker/cbor/v2"
)

// configfs-tsm provider names, as the kernel's provider attribute reports them
// (without the trailing newline).
const (
	ProviderTDX = "tdx_guest"
	ProviderSNP = "sev_guest"
	ProviderCCA = "arm_cca_guest"
)

// Report map keys (docs/protocol.md §4).
const (
	keyProvider = "provider"
	keyOutBlob  = "outblob"
	keyAuxBlob  = "auxblob"
)

// InBlobSize is the size of the configfs-tsm inblob: D = SHA-512(KC), 64 bytes
// (docs/protocol.md §3).
const InBlobSize = 64

// Report is the configfs-tsm report map, the platform evidence of media type
// evidence.MediaTypeTSMReport (docs/protocol.md §4; the map Veraison and ratsd use).
type Report struct {
	// Provider is the kernel's provider name: ProviderTDX, ProviderSNP or ProviderCCA.
	Provider string `cbor:"provider"`
	// OutBlob is the evidence itself: a TDX quote, an SEV-SNP ATTESTATION_REPORT
	// or an Arm CCA token.
	OutBlob []byte `cbor:"outblob"`
	// AuxBlob is auxiliary data, when the host provides it: for SEV-SNP, the
	// GHCB certificate table (VCEK or VLEK, ASK, ARK).
	AuxBlob []byte `cbor:"auxblob,omitempty"`
}

// The modes below are built once and never changed.
var (
	// detEnc encodes the report map (RFC 8949 §4.2.1 core deterministic).
	detEnc = evidence.DetEncMode()
	// strictDec decodes report maps: no duplicate keys, no indefinite lengths,
	// shallow nesting.
	strictDec = evidence.StrictDecMode(16)
)

// Marshal checks r and encodes it deterministically.
func (r *Report) Marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	b, err := detEnc.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("tsm report: encoding: %w", err)
	}
	if len(b) > evidence.MaxItemSize {
		return nil, fmt.Errorf("tsm report: %d bytes, over the limit of %d", len(b), evidence.MaxItemSize)
	}
	return b, nil
}

// check applies the rules every report map obeys, encoded or decoded.
func (r *Report) check() error {
	switch r.Provider {
	case ProviderTDX, ProviderSNP, ProviderCCA:
	default:
		return fmt.Errorf("tsm report: provider %q is not one of %s, %s, %s", r.Provider, ProviderTDX, ProviderSNP, ProviderCCA)
	}
	if len(r.OutBlob) == 0 {
		return fmt.Errorf("tsm report: outblob is empty")
	}
	if len(r.OutBlob) > evidence.MaxItemSize {
		return fmt.Errorf("tsm report: outblob is %d bytes, over the limit of %d", len(r.OutBlob), evidence.MaxItemSize)
	}
	return nil
}

// ParseReport decodes a report map strictly: a CBOR map with text keys, exactly
// "provider" (text, one of the known providers), "outblob" (a non-empty byte
// string) and optionally "auxblob" (a byte string); at most
// evidence.MaxItemSize bytes in all. Unknown or duplicate keys, other types,
// tags, indefinite lengths, deep nesting and trailing bytes are rejected with an
// error that names the field.
func ParseReport(b []byte) (*Report, error) {
	if len(b) > evidence.MaxItemSize {
		return nil, fmt.Errorf("tsm report: %d bytes, over the limit of %d", len(b), evidence.MaxItemSize)
	}
	var m map[string]cbor.RawMessage
	if err := strictDec.Unmarshal(b, &m); err != nil {
		if _, ok := errors.AsType[*cbor.UnmarshalTypeError](err); ok {
			return nil, fmt.Errorf("tsm report: not a map with text keys: %w", err)
		}
		return nil, fmt.Errorf("tsm report: malformed CBOR: %w", err)
	}
	for k := range m {
		if k != keyProvider && k != keyOutBlob && k != keyAuxBlob {
			return nil, fmt.Errorf("tsm report: key %q is not allowed (want %q, %q and optionally %q)", k, keyProvider, keyOutBlob, keyAuxBlob)
		}
	}
	r := &Report{}
	if err := decodeField(m, keyProvider, true, cborText, &r.Provider); err != nil {
		return nil, err
	}
	if err := decodeField(m, keyOutBlob, true, cborBytes, &r.OutBlob); err != nil {
		return nil, err
	}
	if err := decodeField(m, keyAuxBlob, false, cborBytes, &r.AuxBlob); err != nil {
		return nil, err
	}
	if len(r.AuxBlob) == 0 {
		r.AuxBlob = nil
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

// CBOR major types of the report map's values (RFC 8949 §3.1).
const (
	cborBytes byte = 2
	cborText  byte = 3
)

// majorName names a CBOR major type for error messages.
func majorName(major byte) string {
	return [...]string{"an unsigned integer", "a negative integer", "a byte string", "a text string",
		"an array", "a map", "a tagged item", "a simple value or float"}[major&7]
}

// decodeField decodes m[key] into out after checking its CBOR major type, so
// that the library's conversions (an array of small integers into []byte, a
// tag around a byte string) cannot slip through.
func decodeField(m map[string]cbor.RawMessage, key string, required bool, major byte, out any) error {
	raw, ok := m[key]
	if !ok {
		if required {
			return fmt.Errorf("tsm report: %s is missing", key)
		}
		return nil
	}
	if len(raw) == 0 {
		return fmt.Errorf("tsm report: %s is empty", key)
	}
	if got := raw[0] >> 5; got != major {
		return fmt.Errorf("tsm report: %s is %s, want %s", key, majorName(got), majorName(major))
	}
	if err := strictDec.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("tsm report: %s: %w", key, err)
	}
	return nil
}
