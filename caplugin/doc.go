// Package caplugin embeds step-ca (github.com/smallstep/certificates, pinned
// at v0.30.2) and adds attest-acme's device-attest-01 format "cmw" to it
// (docs/protocol.md §1, §7; DESIGN.md decisions 1, 6 and 7):
//
//   - server.go: the CA server rebuilt from step-ca's exported pieces
//     (authority, CA API, ACME API, linker, ACME nosql database), because
//     ca.New takes no ACME database; it keeps what operators rely on: ca.json,
//     step-ca's databases, /health, /roots, revocation, CRL, SCEP, the admin
//     API, TLS renewal of the CA's own certificate, graceful shutdown;
//   - acmedb.go: the acme.DB decorator that catches the one write upstream
//     makes for an unknown attestation format (the challenge marked invalid)
//     when that format is "cmw", and validates the answer instead;
//   - validate.go: the validation itself: payload and kc (package challenge),
//     the configured verifier, the EAR check, the issuance policy;
//   - store.go: what must survive between challenge and finalize (the EAR per
//     attested key and identifier), kept in step-ca's own database;
//   - extension.go: the finalize-time enforcer that puts the EAR into the
//     certificate as a non-critical id-pe-cmw extension and caps its lifetime;
//   - policy.go: the issuance policy (workload -> identifiers), deny by default;
//   - config.go: the "attestAcme" section of ca.json;
//   - verifiers.go: the configured verifier (embedded appraiser, our verifier
//     service, or a Veraison deployment) and its pinned EAR key;
//   - metrics.go: Prometheus metrics on a registry passed in;
//   - devsetup.go: `attest-acme ca init`, a development CA in one directory.
//
// This is the only package of the project that imports step-ca. It imports
// challenge and verifier of this project, and never lego, a TPM or
// configfs.
package caplugin
