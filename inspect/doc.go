// Package inspect recognises and decodes every artefact of attest-acme's
// protocol (docs/protocol.md) so that an operator can see what was attested:
//
//   - acme.go: the device-attest-01 payload {"attObj": ...} and the
//     attestation object {"fmt": "cmw", "attStmt": {"cmw": ...}};
//   - bundle.go: the bundle (CMW collection of kc and platform evidence), the
//     kc (UCCS, tag 601), and whether the platform evidence carries D = H(kc);
//   - tpm.go: TPM 2.0 quote maps (application/vnd.attest-acme.tpm-quote+cbor);
//   - tsm.go: configfs-tsm report maps (application/vnd.veraison.tsm-report+cbor)
//     with the fields of a SEV-SNP report or a TDX quote inside;
//   - ear.go: EARs (signed JWTs), verified only when a key is given;
//   - cert.go: X.509 certificates, their PermanentIdentifier SAN and their
//     id-pe-cmw extension, and bare CMW records;
//   - input.go: reading the input as binary, PEM, hex, base64 or base64url;
//   - node.go, text.go: the result tree and its JSON and text renderings.
//
// Every wire format is decoded by the parser that owns it (evidence,
// challenge, evidence/tpm, evidence/tsm, go-tpm, go-sev-guest, go-tdx-guest,
// veraison/cmw, veraison/ear, jwx, crypto/x509, x509util); this package only
// arranges what they return. It decides nothing about trust: it appraises no
// evidence and checks an EAR's signature only against a key the caller
// pins. It uses no network and holds no state.
//
// It imports evidence, evidence/tpm, evidence/tsm and challenge of this
// project, and never verifier, caplugin or acmeclient.
package inspect
