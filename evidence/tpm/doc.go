// Package tpm is the TPM 2.0 backend of attest-acme (docs/protocol.md §3-4):
// it produces a TPM2_Quote whose qualifyingData is D = SHA-256(kc), and it
// appraises such a quote.
//
// What it owns:
//   - opening a TPM: a character device such as /dev/tpmrm0, a TPM over TCP
//     (swtpm, the reference simulator), or the in-process simulator (open.go);
//   - the PCR banks and selections a quote covers (pcrs.go);
//   - the attestation key (AK): its template, and the checks that a TPMT_PUBLIC
//     is a key fit to sign quotes (ak.go);
//   - the Attester, which implements evidence.Attester with TPM2_Quote
//     (attester.go);
//   - the quote map {"ak", "quoted", "sig", "pcrs", ? "akchain"} of media type
//     evidence.MediaTypeTPMQuote, its encoding and strict decoding (quote.go);
//   - the appraisal of a quote against pinned AKs or AK CA roots: AK trust,
//     signature, qualifyingData, PCR digest (appraise.go, signature.go).
//
// Appraisal here stops at "this TPM quoted these PCR values over D": it
// returns Claims and decides nothing about reference values or policy, and it
// issues no attestation result. That is the verifier package's job.
//
// All TPM structures are encoded and decoded by github.com/google/go-tpm's
// tpm2 package; the CBOR map by fxamacker/cbor through the evidence package's
// strict and deterministic modes.
//
// This package imports no package of this project except evidence. Only the
// evidence/* packages talk to a TPM.
package tpm
