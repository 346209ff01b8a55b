// Package evidence owns the attester side of attest-acme's key binding and the
// wire objects that client, CA and verifier share (docs/protocol.md §2-4):
//
//   - the key-confirmation claims set (kc), a UCCS naming the certificate key
//     and the freshness nonce (kc.go, cosekey.go);
//   - the binding value D = H(kc) for each platform (binding.go);
//   - the CMW collection ("bundle") that carries kc and the platform evidence
//     (bundle.go);
//   - the Attester interface that platform backends implement (attester.go).
//
// Backends live in sub-packages (evidence/tpm, evidence/tsm, evidence/sim),
// each beside the code that appraises its evidence.
//
// This package knows nothing of ACME, step-ca, lego or EAR, and imports no
// other package of this project.
package evidence
