#!/usr/bin/env bash
# End-to-end test of the compose environment (docker-compose.yml,
# testenv/README.md). Prints one PASS or FAIL line per step and exits non-zero
# if any step failed:
#
#   build             testenv/build.sh (binary, keys, images) and testenv/certcheck
#   up                the three services, each healthy before the next starts
#   first certificate the cvm obtains one (copied out with docker cp)
#   checks            chain to the CA root, PermanentIdentifier, stored key,
#                     EAR under the verifier's key with the challenge's nonce,
#                     akpub == the certificate's key (testenv/certcheck)
#   inspect           attest-acme inspect --ear-key verifies the same EAR
#   renewal           a new certificate replaces it, and passes the checks
#   verifier stopped  docker stop of the verifier
#   fails closed      the cvm's next renewal fails with the CA's ACME problem
#   nothing issued    no new certificate in the cvm, none issued by the CA
#   verifier started  back and healthy
#   recovery          a new certificate appears, and passes the checks
#   teardown          down -v: no container or volume left
#
# Every wait is bounded. It uses its own compose project (attest-acme-e2e,
# or $E2E_PROJECT) and an ephemeral host port for the CA, so it neither
# disturbs nor collides with an environment started by hand. Needs Go and a
# running Docker daemon with docker-compose (v1) or `docker compose` (v2);
# no registry.
set -uo pipefail
cd "$(dirname "$0")/.."

export COMPOSE_PROJECT_NAME="${E2E_PROJECT:-attest-acme-e2e}"
export CA_PUBLISH="127.0.0.1:" # an ephemeral port on 127.0.0.1
readonly ID=cvm-1
readonly CLIENT_DIR=/var/lib/attest-acme/client
readonly ROOT_PEM=testenv/build/cvm/root_ca.crt
readonly EAR_KEY=testenv/build/ca/verifier/ear-verification-key.pem

work=$(mktemp -d)
start=$SECONDS
passed=0
failed=0
torn_down=0
started=0 # compose up was run: logs are worth showing after a failure

if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  COMPOSE=(docker-compose)
fi
compose() { "${COMPOSE[@]}" "$@"; }

pass() { printf 'PASS  %-18s %s\n' "$1" "$2"; passed=$((passed + 1)); }
fail() { printf 'FAIL  %-18s %s\n' "$1" "$2"; failed=$((failed + 1)); }
indent() { sed 's/^/        /'; }

# wait_for SECONDS CMD...: run CMD every 2 seconds until it succeeds; false
# if it has not after SECONDS.
wait_for() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    if ((SECONDS >= end)); then return 1; fi
    sleep 2
  done
}

teardown() {
  if ((failed && started)); then
    echo "---- last lines of each service's log"
    for s in verifier ca cvm; do
      # Without the CA's line for each health check, which would fill the tail.
      timeout 30 "${COMPOSE[@]}" logs --no-color --tail=300 "$s" 2>&1 | grep -v 'path=/health ' | tail -n 25 | cut -c1-400
    done
    echo "----"
  fi
  timeout 120 "${COMPOSE[@]}" down -v --remove-orphans >"$work/down.log" 2>&1
  local left
  left=$(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME"; docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME")
  if [ -z "$left" ]; then
    pass teardown "down -v: no container or volume of $COMPOSE_PROJECT_NAME left"
  else
    fail teardown "left behind: $(echo $left)"
  fi
  torn_down=1
}

finish() {
  if ((!torn_down)); then teardown; fi
  rm -rf "$work"
  echo "e2e: $passed passed, $failed failed, $((SECONDS - start))s"
  if ((failed)); then exit 1; fi
  exit 0
}
trap finish EXIT
trap 'fail interrupted "signal"; exit 1' INT TERM

# abort STEP MESSAGE: a step the rest depends on failed.
abort() { fail "$1" "$2"; exit 1; }

# ---- the cvm's files, copied out of its container

# copy DEST: the client's certificates directory -> DEST/certificates.
copy() {
  rm -rf "$1" && mkdir -p "$1" &&
    timeout 30 docker cp "$cvm:$CLIENT_DIR/certificates" "$1/" >/dev/null 2>&1 &&
    [ -s "$1/certificates/$ID.crt" ]
}

# fingerprint DIR: hash of the current certificate in a copy.
fingerprint() { sha256sum <"$1/certificates/$ID.crt" | cut -d' ' -f1; }

# certcheck DIR: the checks, output in $work/certcheck.out.
certcheck() {
  timeout 30 "$work/certcheck" --dir "$1" --identifier "$ID" --root "$ROOT_PEM" --ear-key "$EAR_KEY" >"$work/certcheck.out" 2>&1
}

# copy_and_check DIR: a fresh copy that passes certcheck (retried: a copy
# taken during a renewal may catch the set being swapped).
copy_and_check() { copy "$1" && certcheck "$1"; }

serial() { sed -n 's/^certificate: serial \([0-9a-f]*\).*/\1/p' "$work/certcheck.out"; }

# changed DIR OLD_FINGERPRINT: a fresh copy whose certificate is not OLD.
changed() { copy "$1" && [ "$(fingerprint "$1")" != "$2" ]; }

# log_lines SERVICE: the number of lines in its log so far.
log_lines() { timeout 30 docker logs "$1" 2>&1 | wc -l; }
# log_since CONTAINER N: its log after line N.
log_since() { timeout 30 docker logs "$1" 2>&1 | tail -n "+$(($2 + 1))"; }

# ---- steps

if ! timeout 30 docker info >/dev/null 2>&1; then
  abort docker "no Docker daemon answers (docker info failed)"
fi

# A run that was interrupted before its teardown must not leave state behind.
timeout 120 "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1

t=$SECONDS
if timeout 900 testenv/build.sh >"$work/build.log" 2>&1 && timeout 300 go build -o "$work/certcheck" ./testenv/certcheck >>"$work/build.log" 2>&1; then
  pass build "binary, keys and images in $((SECONDS - t))s"
else
  tail -n 30 "$work/build.log" | indent
  abort build "testenv/build.sh or the build of testenv/certcheck failed (or took over 15 minutes)"
fi

t=$SECONDS
started=1
if timeout 300 "${COMPOSE[@]}" up -d >"$work/up.log" 2>&1; then
  cvm=$(compose ps -q cvm)
  verifier=$(compose ps -q verifier)
  ca=$(compose ps -q ca)
  pass up "verifier, ca, cvm up (each healthy before the next) in $((SECONDS - t))s"
else
  cvm=$(compose ps -q cvm)
  tail -n 20 "$work/up.log" | indent
  abort up "compose up failed or took over 300s"
fi

t=$SECONDS
if wait_for 120 copy "$work/first"; then
  pass "first certificate" "in $((SECONDS - t))s"
else
  abort "first certificate" "none in $CLIENT_DIR/certificates/$ID.crt after 120s"
fi

if wait_for 20 copy_and_check "$work/first"; then
  pass checks "serial $(serial)"
  grep '^ok' "$work/certcheck.out" | indent
  # The same certificate through `attest-acme inspect`, which verifies the
  # EAR it carries under the key given (exit 1 if it does not verify).
  if timeout 30 testenv/build/attest-acme inspect --ear-key "$EAR_KEY" "$work/first/certificates/$ID.crt" >"$work/inspect.out" 2>&1; then
    pass inspect "attest-acme inspect --ear-key: the certificate's EAR verifies"
  else
    indent <"$work/inspect.out"
    fail inspect "attest-acme inspect --ear-key rejects the certificate"
  fi
else
  indent <"$work/certcheck.out"
  fail checks "the first certificate fails the checks"
fi
first=$(fingerprint "$work/first")

t=$SECONDS
if ! wait_for 120 changed "$work/renewed" "$first"; then
  fail renewal "no new certificate within 120s"
elif wait_for 20 copy_and_check "$work/renewed"; then
  pass renewal "serial $(serial) replaced the first after $((SECONDS - t))s, and passes the checks"
else
  indent <"$work/certcheck.out"
  fail renewal "the renewed certificate fails the checks"
fi

# Stop the verifier just after a renewal: the next one is due in about
# half a minute and must fail.
copy "$work/before" || true
before=$(fingerprint "$work/before" 2>/dev/null || echo none)
cvm_mark=$(log_lines "$cvm")
ca_mark=$(log_lines "$ca")
if timeout 60 "${COMPOSE[@]}" stop verifier >/dev/null 2>&1; then
  pass "verifier stopped" "docker stop"
else
  fail "verifier stopped" "compose stop verifier failed"
fi

problem() { log_since "$cvm" "$cvm_mark" | grep -m1 -o 'urn:ietf:params:acme:error:.*' >"$work/problem"; }
t=$SECONDS
if wait_for 120 problem; then
  if grep -q 'urn:ietf:params:acme:error:serverInternal' "$work/problem" && grep -qi verifier "$work/problem"; then
    pass "fails closed" "after $((SECONDS - t))s the cvm logs the CA's problem:"
  else
    fail "fails closed" "the cvm logs a problem that is not serverInternal naming the verifier:"
  fi
  cut -c1-300 "$work/problem" | indent
else
  fail "fails closed" "no ACME problem in the cvm's log within 120s of stopping the verifier"
fi

# Let it try once more, then look: nothing new in the cvm, nothing issued.
second_failure() { [ "$(log_since "$cvm" "$cvm_mark" | grep -c 'urn:ietf:params:acme:error:')" -ge 2 ]; }
wait_for 40 second_failure || true
attempts=$(log_since "$cvm" "$cvm_mark" | grep -c 'urn:ietf:params:acme:error:')
issued=$(log_since "$ca" "$ca_mark" | grep -c 'msg="attested certificate"')
if copy "$work/down" && [ "$(fingerprint "$work/down")" = "$before" ] && [ "$issued" -eq 0 ]; then
  pass "nothing issued" "$attempts failed attempts: the cvm keeps its certificate, the CA issued none"
else
  fail "nothing issued" "while the verifier was down: certificate changed or unreadable, or the CA issued $issued"
fi

t=$SECONDS
restarted=$SECONDS
healthy() { [ "$(timeout 30 docker inspect -f '{{.State.Health.Status}}' "$verifier" 2>/dev/null)" = healthy ]; }
if timeout 60 "${COMPOSE[@]}" start verifier >/dev/null 2>&1 && wait_for 60 healthy; then
  pass "verifier started" "healthy after $((SECONDS - t))s"
else
  fail "verifier started" "not healthy within 60s"
fi

if ! wait_for 120 changed "$work/recovered" "$before"; then
  fail recovery "no new certificate within 120s of the verifier's return"
elif wait_for 20 copy_and_check "$work/recovered"; then
  pass recovery "serial $(serial), $((SECONDS - restarted))s after the verifier's start, and passes the checks"
else
  indent <"$work/certcheck.out"
  fail recovery "the new certificate fails the checks"
fi

teardown
