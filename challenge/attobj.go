package challenge

import (
	"errors"
	"fmt"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/fxamacker/cbor/v2"
)

// The attestation object (docs/protocol.md §1.5):
// CBOR {"fmt": "cmw", "attStmt": {"cmw": bstr BUNDLE}}.
const (
	// Format is the attestation-object format this project adds to device-attest-01.
	Format = "cmw"
	// MaxAttObjSize bounds the decoded attestation object.
	MaxAttObjSize = 64 << 10
)

// attObj is the attestation object as we write it.
type attObj struct {
	Fmt     string  `cbor:"fmt"`
	AttStmt attStmt `cbor:"attStmt"`
}

type attStmt struct {
	CMW []byte `cbor:"cmw"`
}

// attObjDec reads attestation objects: unknown keys are ignored, as WebAuthn
// does (docs/protocol.md §7), but duplicate keys, indefinite lengths and deep
// nesting are errors.
var attObjDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 64,
		MaxMapPairs:      64,
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("challenge: CBOR options: %v", err))
	}
	return dm
}()

// EncodeAttObj wraps a bundle in an attestation object.
func EncodeAttObj(bundle []byte) ([]byte, error) {
	b, err := evidence.DetEncMode().Marshal(attObj{Fmt: Format, AttStmt: attStmt{CMW: bundle}})
	if err != nil {
		return nil, fmt.Errorf("attestation object: %w", err)
	}
	if len(b) > MaxAttObjSize {
		return nil, fmt.Errorf("attestation object: %d bytes, over the limit of %d", len(b), MaxAttObjSize)
	}
	return b, nil
}

// ParseAttObj returns the bundle inside an attestation object, checking that
// fmt is the text "cmw" and attStmt.cmw a byte string.
func ParseAttObj(b []byte) ([]byte, error) {
	if len(b) > MaxAttObjSize {
		return nil, fmt.Errorf("attestation object: %d bytes, over the limit of %d", len(b), MaxAttObjSize)
	}
	var top map[string]cbor.RawMessage
	if err := attObjDec.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("attestation object: not a CBOR map with text keys: %w", err)
	}
	var f string
	if raw, ok := top["fmt"]; !ok {
		return nil, errors.New("attestation object: fmt is missing")
	} else if err := attObjDec.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("attestation object: fmt is not a text string: %w", err)
	}
	if f != Format {
		return nil, fmt.Errorf("attestation object: fmt is %q, want %q", f, Format)
	}
	raw, ok := top["attStmt"]
	if !ok {
		return nil, errors.New("attestation object: attStmt is missing")
	}
	var stmt map[string]cbor.RawMessage
	if err := attObjDec.Unmarshal(raw, &stmt); err != nil {
		return nil, fmt.Errorf("attestation object: attStmt is not a CBOR map with text keys: %w", err)
	}
	rawCMW, ok := stmt["cmw"]
	if !ok {
		return nil, errors.New("attestation object: attStmt.cmw is missing")
	}
	if len(rawCMW) == 0 || rawCMW[0]>>5 != 2 {
		return nil, errors.New("attestation object: attStmt.cmw is not a byte string")
	}
	var bundle []byte
	if err := attObjDec.Unmarshal(rawCMW, &bundle); err != nil {
		return nil, fmt.Errorf("attestation object: attStmt.cmw: %w", err)
	}
	if len(bundle) == 0 {
		return nil, errors.New("attestation object: attStmt.cmw is empty")
	}
	return bundle, nil
}
