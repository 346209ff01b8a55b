#!/usr/bin/env bash
# Smoke test of the loopback Veraison deployment, for CI: build, start,
# provision the PSA test endorsements, appraise PSA tokens through the
# challenge-response API (apiclient), check the EARs under the pinned key,
# stop. One PASS/FAIL line per check; exit status 0 only if all pass.
# Every step is bounded by `timeout`. Needs Go, gcc and coreutils.
#
#   SMOKE_UNIT=0        skip the unit tests of tools/veraison (default: run them)
#   SMOKE_KEEP_STATE=1  keep the state dir (logs) after the run
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${VERAISON_BIN:-$repo/bin/veraison}"
work="$(mktemp -d "${TMPDIR:-/tmp}/veraison-smoke.XXXXXX")"
export VERAISON_STATE="$work/state" VERAISON_BIN="$bin"
fails=0
t0=$(date +%s)

pass() { echo "PASS $*"; }
fail() {
	echo "FAIL $*"
	fails=$((fails + 1))
}
# check NAME CMD...: PASS if CMD succeeds.
check() {
	local name="$1"
	shift
	if "$@" >"$work/out" 2>&1; then pass "$name"; else
		fail "$name"
		sed 's/^/    /' "$work/out" | tail -n 15
	fi
}
# refuse NAME CMD...: PASS if CMD fails.
refuse() {
	local name="$1"
	shift
	if "$@" >"$work/out" 2>&1; then
		fail "$name (it was accepted)"
		sed 's/^/    /' "$work/out" | tail -n 15
	else pass "$name"; fi
}
finish() {
	timeout 30 "$here/run.sh" stop >/dev/null 2>&1
	if [[ ${SMOKE_KEEP_STATE:-0} == 1 ]]; then echo "state kept in $work"; else rm -rf "$work"; fi
	echo "smoke: $fails failure(s) in $(($(date +%s) - t0))s"
	[[ $fails == 0 ]] && echo "PASS veraison smoke" || echo "FAIL veraison smoke"
}
trap finish EXIT

# D = SHA-512(kc) in the protocol; here SHA-512 of random bytes standing in for kc.
nonce64() { head -c 256 /dev/urandom | sha512sum | cut -d' ' -f1; }
nonceN() { head -c "$1" /dev/urandom | od -An -tx1 -v | tr -d ' \n'; }

b0=$(date +%s)
if ! timeout 1200 "$here/build.sh" "$bin"; then
	fail "build"
	exit 1
fi
pass "build ($(($(date +%s) - b0))s)"

if [[ ${SMOKE_UNIT:-1} != 0 ]]; then
	check "unit tests tools/veraison" timeout 600 bash -c "cd '$repo/tools/veraison' && go test -count=1 ./..."
	check "unit tests tools/veraison/client" timeout 600 bash -c "cd '$repo/tools/veraison/client' && go test -count=1 ./..."
fi

s0=$(date +%s)
if ! timeout 120 "$here/run.sh" start >"$work/env" 2>"$work/start.log"; then
	fail "start"
	sed 's/^/    /' "$work/start.log" | tail -n 40
	exit 1
fi
pass "start and provision ($(($(date +%s) - s0))s)"
# shellcheck disable=SC1091
source "$work/env"
psa=("$VERAISON_PSA_TOOL")
verify=("${psa[@]}" verify -url "$VERAISON_VERIFICATION_URL" -ear-key "$VERAISON_EAR_KEY_JWK")
good=(-key "$VERAISON_PSA_IAK" -claims "$VERAISON_PSA_CLAIMS")

check "status reports running and ready" timeout 20 "$here/run.sh" status
check "services listen on 127.0.0.1 only" bash -c "grep -q 'listen-addr: 127.0.0.1:' '$VERAISON_STATE/config.yaml' && ! grep -Eq 'addr: (0\.0\.0\.0|\[::\]|:)' '$VERAISON_STATE/config.yaml'"

n=$(nonce64)
check "64-byte nonce (SHA-512): affirming EAR" timeout 60 "${verify[@]}" -nonce "$n" "${good[@]}" -jwt-out "$work/ear.jwt"
check "EAR verifies under the pinned PEM key" timeout 30 "${psa[@]}" check-ear -jwt "$work/ear.jwt" -ear-key "$VERAISON_EAR_KEY_PEM" -nonce "$n"
timeout 30 "$bin/veraison-testenv" ear-key -dir "$work/other-key" >/dev/null
refuse "EAR rejected under another key" timeout 30 "${psa[@]}" check-ear -jwt "$work/ear.jwt" -ear-key "$work/other-key/ear-verification-key.pem" -nonce "$n"
refuse "EAR rejected for another nonce" timeout 30 "${psa[@]}" check-ear -jwt "$work/ear.jwt" -ear-key "$VERAISON_EAR_KEY_PEM" -nonce "$(nonce64)"

check "32-byte nonce: affirming EAR" timeout 60 "${verify[@]}" -nonce "$(nonceN 32)" "${good[@]}"
check "48-byte nonce: affirming EAR" timeout 60 "${verify[@]}" -nonce "$(nonceN 48)" "${good[@]}"

timeout 30 "${psa[@]}" token "${good[@]}" -nonce "$(nonce64)" -out "$work/stale.cbor"
check "token for another nonce: contraindicated" timeout 60 "${verify[@]}" -nonce "$(nonce64)" -token "$work/stale.cbor" -want contraindicated

check "unendorsed workload measurement: warning" timeout 60 "${verify[@]}" -nonce "$(nonce64)" \
	-key "$VERAISON_PSA_IAK" -claims "$here/testdata/psa-claims-unknown-workload.json" -want warning

timeout 30 "${psa[@]}" keygen -out "$work/unknown-iak.pem"
check "unprovisioned attestation key: contraindicated" timeout 60 "${verify[@]}" -nonce "$(nonce64)" \
	-key "$work/unknown-iak.pem" -claims "$VERAISON_PSA_CLAIMS" -want contraindicated

check "stop" timeout 30 "$here/run.sh" stop
refuse "status reports stopped" timeout 20 "$here/run.sh" status
[[ $fails == 0 ]]
