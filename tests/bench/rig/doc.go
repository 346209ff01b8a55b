// Package rig runs attest-acme the way an operator does, for the benchmark
// driver (tests/bench) and the load and fault tests (tests/load): the CA and
// the verifier service as separate processes of the real binary, and ACME
// clients (golang.org/x/crypto/acme, one reused account per client) that
// time every step of an issuance.
//
// What it owns:
//
//   - setup.go: building cmd/attest-acme, writing a development CA
//     (caplugin.InitDev) with the chosen database (bbolt or badgerv2), the
//     simulated SEV-SNP anchors and, optionally, the TPM simulator's AK, and
//     pointing it at a verifier service;
//   - process.go: starting, stopping and killing those processes, and
//     reading their peak RSS (VmHWM) and CPU time from /proc;
//   - client.go: one issuance, attested (device-attest-01, format cmw) or
//     plain http-01 (an IP identifier, RFC 8738), step by step with timings,
//     and a retry hook for the fault tests;
//   - http01.go: the http-01 responder step-ca fetches from;
//   - check.go: what every attested certificate must be (its key is the
//     attested key and the EAR's akpub, it chains to the root).
//
// It is test tooling, not production code. It imports caplugin, challenge,
// evidence, evidence/sim, evidence/tpm and verifier of this project, and
// golang.org/x/crypto/acme; never step-ca or lego directly.
package rig
