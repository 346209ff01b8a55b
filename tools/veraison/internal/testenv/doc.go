// Package testenv owns the state a loopback Veraison deployment needs before
// its services start: the sqlite stores (created with Veraison's own kvstore
// and policy store code, so the schema is upstream's), the EAR signing key
// (a fresh ES256 key written as a private JWK for vts and as a public JWK and
// PEM for the relying parties that pin it), unsigned CoRIMs compiled with
// veraison/corim from JSON templates, free loopback ports, and the readiness
// check on the services' well-known endpoints.
//
// It must not import anything of attest-acme's main module, nor run the
// services: testenv/veraison/run.sh does that.
package testenv
