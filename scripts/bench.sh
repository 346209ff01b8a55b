#!/usr/bin/env bash
# The benchmark (docs/performance.md, issue 7): builds attest-acme and the
# driver (tests/bench), then in one run, for bbolt and then badgerv2, serves
# one CA as a separate process on loopback and measures attested issuance
# (simulated SEV-SNP, TPM simulator) against plain http-01 issuance at 1, 8
# and 32 clients, the CA's peak RSS, and the verifier's appraisals per second
# against the cryptographic bound (go test -bench BenchmarkVerifier ./verifier).
# The full run also measures stock step-ca v0.30.2 (built from the module in
# tests/bench/stepca) on the same ca.json as a baseline.
#
#   scripts/bench.sh            full run (about 8 minutes on 2 cores);
#                               rewrites the results section of docs/performance.md
#   scripts/bench.sh --quick    short run for CI (about a minute, no stock
#                               step-ca); prints the tables and leaves
#                               docs/performance.md alone
#
# Any other flags go to the driver (go run ./tests/bench -h lists them), e.g.
# --dbs bbolt, --pprof DIR. http-01 is answered on 127.0.0.1:80, where step-ca
# fetches it: run as root (or drop it with --modes sev-snp,tpm). The TPM mode
# needs cgo (gcc, libssl-dev). Exits non-zero if any issuance failed.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

quick=0
for a in "$@"; do
  case "$a" in -quick|--quick) quick=1 ;; esac
done

go build -o "$tmp/attest-acme" ./cmd/attest-acme
go build -o "$tmp/bench" ./tests/bench

extra=()
if [ "$quick" = 0 ]; then
  (cd tests/bench/stepca && CGO_ENABLED=0 go build -o "$tmp/step-ca" github.com/smallstep/certificates/cmd/step-ca)
  extra=(-update docs/performance.md -stepca "$tmp/step-ca")
fi
"$tmp/bench" -bin "$tmp/attest-acme" -command "scripts/bench.sh $*" "${extra[@]}" "$@"
