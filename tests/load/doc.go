// Package load holds attest-acme's load and fault tests (docs/performance.md,
// "Load and fault tests"); it has no code besides them.
//
//   - TestLoad: many attested issuances over concurrent clients against one
//     CA (in process, tests/internal/harness): no errors, unique serials,
//     every certificate's key is its attested key and its EAR's akpub, and
//     the CA stored exactly the certificates the clients received.
//   - TestVerifierKilledUnderLoad: the CA (a process) calls attest-acme's
//     verifier service (a process), which is killed in the middle of the
//     load and restarted: the affected challenges fail with serverInternal
//     and stay pending, no order whose challenge failed can be finalized,
//     and the clients' retries succeed once the verifier is back.
//   - TestCARestartUnderLoad: the CA process is stopped (SIGTERM) and later
//     killed (SIGKILL) in the middle of the load and restarted on the same
//     database: clients recover by retrying, and every certificate the CA
//     stored is for a key that was attested.
//
// By default the load is short (64 issuances over 8 clients for TestLoad);
// `go test -tags load ./tests/load` runs the long version (1,000 issuances
// over 32 clients). The CA and verifier processes are the real binary, built
// by TestMain (with -race when the tests are).
//
// It imports the harness and rig test tooling, caplugin, evidence and
// verifier of this project; never step-ca or lego.
package load
