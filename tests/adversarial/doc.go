// Package adversarial is attest-acme's adversarial suite (issue 7): every
// test attacks the attested path of a CA served in process (real step-ca,
// the real verifier, simulated SEV-SNP and TDX platforms, the TPM
// simulator) with an ACME client that is not ours, and shows that it fails
// closed: the client gets the ACME problem the protocol promises
// (docs/protocol.md §7), with a detail that names the check, and no
// certificate is issued.
//
// The package holds tests only; README.md lists every attack, the problem it
// ends in and the check that stops it, and TestREADMEListsEveryAttack keeps
// that table in step with the tests (go test ./tests/adversarial -run
// TestREADME -update rewrites it).
//
// Attacks are built with the project's and upstream's real libraries
// (evidence, challenge, evidence/sim, evidence/tpm, fxamacker/cbor,
// veraison/cmw, veraison/ear, go-cose, lestrrat-go/jwx) or, for malformed
// CBOR, explicit byte vectors; nothing in production code is switched off to
// make an attack possible.
//
// It imports tests/internal/harness and the packages it attacks; nothing
// imports it.
package adversarial
