package challenge

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// maxPayloadSize bounds the JSON payload: base64url of the largest attestation
// object plus the JSON around it.
const maxPayloadSize = (MaxAttObjSize*4)/3 + 64

// payload is the device-attest-01 challenge answer (draft-ietf-acme-device-attest §5).
type payload struct {
	AttObj string `json:"attObj"`
}

// EncodePayload returns the JWS payload {"attObj": base64url-no-padding(attObj)}.
func EncodePayload(attObj []byte) ([]byte, error) {
	if len(attObj) > MaxAttObjSize {
		return nil, fmt.Errorf("attestation object: %d bytes, over the limit of %d", len(attObj), MaxAttObjSize)
	}
	return json.Marshal(payload{AttObj: base64.RawURLEncoding.EncodeToString(attObj)})
}

// ParsePayload returns the attestation object of a device-attest-01 payload.
// attObj must be base64url without padding (docs/protocol.md §7).
func ParsePayload(p []byte) ([]byte, error) {
	if len(p) > maxPayloadSize {
		return nil, fmt.Errorf("payload: %d bytes, over the limit of %d", len(p), maxPayloadSize)
	}
	// A map, not the struct: encoding/json matches struct fields without
	// regard to case, and "attobj" is not "attObj".
	var m map[string]json.RawMessage
	if err := json.Unmarshal(p, &m); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var s string
	if raw, ok := m["attObj"]; !ok {
		return nil, errors.New("payload: attObj is missing")
	} else if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("payload: attObj is not a string: %w", err)
	}
	if s == "" {
		return nil, errors.New("payload: attObj is empty")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("payload: attObj is not unpadded base64url: %w", err)
	}
	return b, nil
}
