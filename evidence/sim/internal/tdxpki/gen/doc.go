// Command gen writes a fresh test PCK chain for the simulated TDX platform
// into a directory (evidence/sim/testdata, through go:generate in
// evidence/sim/tdx.go). The files are committed: the chain must be the same
// in every process (a policy written by one process trusts the root that
// quotes produced by another process chain to), and key generation cannot be
// seeded (Go ignores the rand argument of ecdsa.GenerateKey).
//
// Run it only to replace the test chain; every policy that names the old
// test root must then be rewritten. Of this project it imports only
// evidence/sim/internal/tdxpki.
package main
