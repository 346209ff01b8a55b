package evidence

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// maxNesting bounds how deep any CBOR item we decode from the network may nest.
// The deepest legitimate structure (a TPM quote map's pcrs) nests three levels.
const maxNesting = 8

// StrictDecMode returns the CBOR decoding mode used for every item that arrives
// from the network: duplicate map keys, indefinite lengths and nesting deeper
// than a few levels are errors, and integers that overflow their target type
// are rejected by the decoder. maxItems bounds array elements and map pairs.
func StrictDecMode(maxItems int) cbor.DecMode {
	if maxItems < 16 {
		maxItems = 16 // the smallest value the library accepts
	}
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		MaxNestedLevels:   maxNesting,
		MaxArrayElements:  maxItems,
		MaxMapPairs:       maxItems,
		IntDec:            cbor.IntDecConvertSigned,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		// The options above are constants; an error is a programming mistake.
		panic(fmt.Sprintf("evidence: strict CBOR decoding options: %v", err))
	}
	return dm
}

// DetEncMode returns the RFC 8949 §4.2.1 core deterministic encoding mode used
// for every CBOR item this project produces.
func DetEncMode() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(fmt.Sprintf("evidence: deterministic CBOR encoding options: %v", err))
	}
	return em
}

// The modes below are built once and never changed.
var (
	// strictDec decodes the small items of this package (kc, COSE_Key, bundle).
	strictDec = StrictDecMode(64)
	// detEnc encodes every item this package produces.
	detEnc = DetEncMode()
)
