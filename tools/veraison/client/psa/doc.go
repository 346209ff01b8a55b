// Package psa is the attest-acme test client for a Veraison deployment's PSA
// scheme (PSA_IOT): it loads or generates the PSA initial attestation key
// (IAK) used in tests, builds PSA tokens (profile http://arm.com/psa/2.0.0,
// COSE_Sign1 ES256, with psatoken) whose psa-nonce is a given value,
// provisions endorsements and runs the challenge-response exchange through
// veraison/apiclient, and checks the EAR that comes back (signature under a
// pinned key with veraison/ear, profile, eat_nonce, iat, per-submod status).
//
// It lives in its own module (tools/veraison/client) because apiclient v0.4.0
// needs cmw v0.2.0, which Veraison's services v0.0.2501 cannot build with.
// It must not import attest-acme's main module or Veraison's services.
package psa
