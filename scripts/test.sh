#!/usr/bin/env bash
# The project's test command (README "Tests"): builds the helpers the tests
# use (the Veraison deployment for the interop tests; skipped when up to date),
# then runs every package with the race detector. The TPM simulator needs cgo
# (gcc, libssl-dev); the swtpm tests need swtpm. .ci/run installs both.
set -euo pipefail
cd "$(dirname "$0")/.."
testenv/veraison/build.sh >&2
exec go test -race -count=1 -timeout 20m ./...
