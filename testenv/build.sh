#!/usr/bin/env bash
# Builds the images of the compose test environment (docker-compose.yml)
# without any registry:
#   1. the static attest-acme binary (CGO_ENABLED=0) -> testenv/build/attest-acme
#   2. keys, certificates and configurations (go run ./testenv/gen) -> testenv/build/{ca,verifier,cvm}
#   3. the images, FROM scratch, from testenv/ (only the Dockerfile and those files)
# Then: docker-compose up (or docker compose up). See testenv/README.md.
#
# Environment: COMPOSE_PROJECT_NAME as compose reads it; GOARCH to build for
# another architecture than the host's.
set -euo pipefail
cd "$(dirname "$0")/.."

# compose: `docker compose` (v2) if it works, else docker-compose (v1).
compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose "$@"
  else
    docker-compose "$@"
  fi
}

echo "== build: static binary testenv/build/attest-acme"
mkdir -p testenv/build
CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o testenv/build/attest-acme ./cmd/attest-acme

echo "== build: keys, certificates and configurations (testenv/gen)"
go run ./testenv/gen -config testenv/config -out testenv/build

echo "== build: images"
compose build
