// Package harness starts an attest-acme CA in process and drives it over ACME
// with an ACME client that is not ours (golang.org/x/crypto/acme), for the
// tests under tests/: the adversarial suite, load tests and benchmark drivers.
//
// What it owns, and nothing more:
//
//   - ca.go: Start writes a development CA (caplugin.InitDev) into a
//     directory, lets the caller adjust it (verifier policy, plugin section,
//     remote verifier), serves it on a loopback TLS listener with the real
//     embedded verifier and the simulated platforms' test anchors, and reads
//     its metrics and, once closed, the certificates in its database;
//   - acme.go: accounts, permanent-identifier orders, the device-attest-01
//     answer (challenge.NewAnswer, sent as x/crypto/acme's Challenge.Payload),
//     challenge state, finalize and the whole issuance (Order.Obtain);
//   - verifier.go: the real appraiser over the CA's development policy, and
//     attest-acme's verifier service on a loopback HTTP server, so a CA can
//     be pointed at a remote verifier (caplugin's "service" type);
//   - problem.go: ACME problems out of x/crypto/acme errors, and checking an
//     attested certificate's chain.
//
// The API is kept backward compatible: other test packages build on it. Add
// fields and functions; do not change or remove existing ones.
//
// Known behaviours of step-ca v0.30.2 the harness works around:
//   - an authorization whose only challenge failed stays pending until it
//     expires, so Order.ChallengeState reads the challenge through its
//     authorization, and Order.Finalize does not wait for the order;
//   - a POST-as-GET to a pending device-attest-01 challenge URL makes step-ca
//     validate an empty payload (serverInternal), so the harness never does it;
//   - requests that overlap on one account's orders (newOrder, order
//     polling, finalize) sometimes get serverInternal: step-ca's nosql
//     database writes with compare-and-swap, and newOrder rewrites the
//     account's order index after refreshing every pending order's status.
//     Give each concurrent worker an account of its own;
//   - the attested certificate's subjectAltName holds only an otherName and
//     is critical, which Go's x509 does not handle: VerifyChain marks it
//     handled before verifying.
//
// It is a test helper, not production code: it imports caplugin, challenge,
// evidence, evidence/sim and verifier of this project, golang.org/x/crypto/acme
// and go.etcd.io/bbolt (to count stored certificates), and never step-ca
// itself (only caplugin does), lego, a TPM or configfs.
package harness
