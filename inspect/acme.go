package inspect

import (
	"fmt"

	"github.com/attest-acme/attest-acme/challenge"
)

// payload decodes a device-attest-01 JWS payload {"attObj": base64url(ATTOBJ)}
// (docs/protocol.md §1.5) with challenge.ParsePayload, and the attestation
// object inside it.
func (in *inspector) payload(b []byte) (*Node, error) {
	attObj, err := challenge.ParsePayload(b)
	if err != nil {
		return nil, err
	}
	n := &Node{Kind: KindPayload, Title: fmt.Sprintf("device-attest-01 challenge payload (JSON, %d bytes)", len(b))}
	inner, err := in.attObj(attObj)
	if err != nil {
		inner = opaque("attestation object: not valid", attObj, err.Error())
	}
	n.add("attObj", "attObj", inner)
	return n, nil
}

// attObj decodes an attestation object {"fmt": "cmw", "attStmt": {"cmw":
// BUNDLE}} with challenge.ParseAttObj, and the bundle inside it.
func (in *inspector) attObj(b []byte) (*Node, error) {
	bundle, err := challenge.ParseAttObj(b)
	if err != nil {
		return nil, err
	}
	n := &Node{Kind: KindAttObj, Title: fmt.Sprintf("attestation object (CBOR, %d bytes)", len(b))}
	n.add("fmt", "fmt", challenge.Format)
	inner, err := in.bundle(bundle)
	if err != nil {
		inner = opaque("bundle: not valid", bundle, err.Error())
	}
	n.add("attStmt", "attStmt", Group{field("cmw", "cmw", inner)})
	return n, nil
}
