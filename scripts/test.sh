#!/usr/bin/env bash
# The project's test command (README "Tests"): every package, with the race
# detector. The TPM simulator needs cgo (gcc, libssl-dev); swtpm tests skip
# with a message when swtpm is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test -race -count=1 -timeout 20m ./...
