// Package verifier turns evidence into signed attestation results (EARs,
// docs/protocol.md §5-6) and checks them for the CA:
//
//   - verifier.go: the Verifier interface the CA calls;
//   - ear.go: signing EARs (Signer) and checking them (Checker);
//   - policy.go: the appraisal policy file (trust anchors, workloads);
//   - appraise.go: the in-process appraiser (the default Verifier);
//   - service.go: the HTTP service (Veraison challenge-response API);
//   - client.go: the Verifier for a remote service, ours or Veraison's.
//
// It imports evidence and challenge of this project, never step-ca or lego.
package verifier
