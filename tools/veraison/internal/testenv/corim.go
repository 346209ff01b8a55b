package testenv

import (
	"fmt"

	"github.com/veraison/corim/comid"
	"github.com/veraison/corim/corim"
)

// CompileCoRIM builds an unsigned CoRIM (untagged unsigned-corim-map, the form
// Veraison's provisioning API takes for the media types
// `application/corim-unsigned+cbor; profile="..."`) from a CoRIM JSON
// template (id and profile) and CoMID JSON documents, in the JSON syntax of
// veraison/corim (the syntax cocli uses). Every CoMID is validated before it
// is added, and the result is validated before it is encoded.
func CompileCoRIM(corimJSON []byte, comidJSON ...[]byte) ([]byte, error) {
	if len(comidJSON) == 0 {
		return nil, fmt.Errorf("corim: no CoMID given")
	}
	var uc corim.UnsignedCorim
	if err := uc.FromJSON(corimJSON); err != nil {
		return nil, fmt.Errorf("corim: decoding the CoRIM template: %w", err)
	}
	for i, j := range comidJSON {
		var c comid.Comid
		if err := c.FromJSON(j); err != nil {
			return nil, fmt.Errorf("corim: decoding CoMID %d: %w", i, err)
		}
		if err := c.Valid(); err != nil {
			return nil, fmt.Errorf("corim: CoMID %d is not valid: %w", i, err)
		}
		if uc.AddComid(c) == nil {
			return nil, fmt.Errorf("corim: adding CoMID %d failed", i)
		}
	}
	if err := uc.Valid(); err != nil {
		return nil, fmt.Errorf("corim: the CoRIM is not valid: %w", err)
	}
	b, err := uc.ToCBOR()
	if err != nil {
		return nil, fmt.Errorf("corim: encoding: %w", err)
	}
	return b, nil
}
