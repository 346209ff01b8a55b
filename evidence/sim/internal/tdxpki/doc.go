// Package tdxpki builds and loads the test PCK signing chain of the simulated
// TDX platform: a test root CA, a test intermediate CA and a PCK leaf
// certificate whose key signs the Quoting Enclave report.
//
// The chain has the shape go-tdx-guest's verify package requires of Intel's
// (Intel SGX PCK Certificate and CRL Profile): ECDSA P-256 keys and
// ECDSA-with-SHA256 signatures throughout, the common names "Intel SGX Root
// CA", "Intel SGX PCK Platform CA" and "Intel SGX PCK Certificate" (verify
// compares them literally), and a leaf with exactly six extensions, one of
// them the SGX extensions (OID 1.2.840.113741.1.13.1) carrying PPID, TCB,
// PCE-ID, FMSPC and SGX type. Every subject also names the organisation
// "attest-acme test PKI (NOT Intel)", so no certificate here can be mistaken
// for, or chain to, Intel's.
//
// This package only builds and parses certificates; it imports nothing of the
// project. It must not be imported outside evidence/sim.
package tdxpki
