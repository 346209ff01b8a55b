// Package sim owns the simulated confidential-computing platforms of
// attest-acme: configfs-tsm providers that need nothing installed (no cgo, no
// TPM, no TEE) and produce evidence that the real appraisal code in evidence/tsm
// verifies, under test trust anchors.
//
//   - sim.go: the fake configfs-tsm (go-configfs-tsm's faketsm) that every
//     simulated provider plugs into;
//   - snp.go, snpchain.go: a sev_guest provider whose SEV-SNP reports are
//     signed by a test AMD chain (ARK → ASK → VCEK) built from
//     go-sev-guest's fixed test keys, with the certificate table in auxblob;
//   - tdx.go: a tdx_guest provider.
//
// The test trust anchors (SNPTestRoots) are exported for tests and the demo. No
// code trusts them unless a caller passes them in explicitly: the verifier's
// default is AMD's production roots, which reject everything this package
// produces.
//
// This package imports evidence, evidence/tsm (the backend it simulates) and its
// own internal packages, and nothing else of this project. It does not import go-sev-guest/testing, which
// registers global command-line flags; it builds its certificate chain with
// crypto/x509 from the keys in go-sev-guest/testing/data, which registers none.
package sim
