// Package tsm owns the configfs-tsm backend of attest-acme (docs/protocol.md §3
// and §4): the report map {"provider", "outblob", ? "auxblob"} that carries a
// TEE's evidence (report.go), the Attester that obtains it through the kernel's
// configfs-tsm interface or a fake of it (attester.go), and, beside it, the code
// that appraises that evidence: SEV-SNP reports against AMD's certificate chain
// (snp*.go), TDX quotes (tdx.go), and the dispatcher that picks the appraiser by
// provider (verifier.go).
//
// Appraisal here establishes facts (the signature chain holds, REPORT_DATA is
// the expected D, what the report says about the guest) and returns them as
// claims; policy decisions on those facts (debug allowed, minimum TCB, VMPL,
// reference measurements) belong to the verifier package.
//
// Appraisal never uses the network: the SEV-SNP VCEK or VLEK certificate must
// travel in the auxblob's certificate table.
//
// This package imports no package of this project except evidence. Importing it
// links github.com/google/go-sev-guest/verify, which registers the global
// command-line flag -workaround_kds_productname on flag.CommandLine.
package tsm
