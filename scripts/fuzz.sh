#!/usr/bin/env bash
# Runs every fuzz target for a while each: `scripts/fuzz.sh 5s` (CI) or
# `scripts/fuzz.sh 5m` (the long run). A finding fails the run and leaves its
# input under the package's testdata/fuzz/<Target>/: fix the code and commit
# the input as a regression seed.
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-10s}"
# Minimizing a new input can take a minute per input with the large seeds
# (6 KiB SEV-SNP reports); bound it so the time goes into fuzzing.
min="${FUZZ_MINIMIZE:-50x}"
fail=0
while read -r pkg target; do
  echo "== $pkg $target ($dur)"
  if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$dur" -fuzzminimizetime="$min" "$pkg"; then
    echo "FAIL: $pkg $target"
    fail=1
  fi
done <<'LIST'
./evidence FuzzParseKC
./evidence FuzzParseBundle
./challenge FuzzParseAttObj
./challenge FuzzDecodePayload
./evidence/tpm FuzzParseQuote
./evidence/tpm FuzzAppraise
./evidence/tsm FuzzParseReport
./evidence/tsm FuzzSNPAppraise
./evidence/tsm FuzzTDXAppraise
LIST
exit $fail
