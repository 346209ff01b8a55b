// Package challenge is the ACME side of attest-acme's protocol
// (docs/protocol.md §1), shared by the client and the CA:
//
//   - nonce.go: keyAuthorization and N = SHA-256(keyAuthorization);
//   - attobj.go: the attestation object {"fmt": "cmw", "attStmt": {"cmw": BUNDLE}};
//   - payload.go: the device-attest-01 JWS payload {"attObj": base64url(ATTOBJ)};
//   - answer.go: the client's path from key and token to payload;
//   - decode.go: the server's path from payload to a checked kc and D;
//   - problem.go: the ACME problems every failure maps to;
//   - certext.go: the id-pe-cmw extension that carries the EAR in a certificate.
//
// It imports evidence and nothing else of this project; it knows nothing of
// step-ca or lego.
package challenge
