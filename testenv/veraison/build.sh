#!/usr/bin/env bash
# Builds the loopback Veraison deployment's binaries into OUT_DIR
# (default: <repo>/bin/veraison, git-ignored):
#   vts-service, provisioning-service, verification-service
#       github.com/veraison/services v0.0.2501 with the builtin scheme loader,
#       from the tools module tools/veraison (go.mod "tool" directives);
#   veraison-testenv   state preparation and readiness (tools/veraison);
#   veraison-psa       PSA token / provisioning / challenge-response client
#                      (tools/veraison/client, a module of its own because
#                      apiclient v0.4.0 and services v0.0.2501 disagree on cmw).
# Idempotent: when the inputs (both modules' go.mod, go.sum and Go sources,
# the Go version, the flags) have not changed since the last build into
# OUT_DIR and every binary is there, nothing is rebuilt.
# Needs Go and gcc (vts uses cgo sqlite3); the module proxy on first use.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/bin/veraison}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

tools="$repo/tools/veraison"
client="$tools/client"
ldflags="-X github.com/veraison/services/config.SchemeLoader=builtin"
services=(
	github.com/veraison/services/vts/cmd/vts-service
	github.com/veraison/services/provisioning/cmd/provisioning-service
	github.com/veraison/services/verification/cmd/verification-service
)
bins=(vts-service provisioning-service verification-service veraison-testenv veraison-psa)

stamp() {
	{
		go version
		echo "$ldflags" "${services[@]}"
		cd "$tools"
		find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 |
			LC_ALL=C sort -z | xargs -0 sha256sum
	} | sha256sum | cut -d' ' -f1
}

want="$(stamp)"
if [[ -f "$out/.build-stamp" && "$(cat "$out/.build-stamp")" == "$want" ]]; then
	ok=1
	for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || ok=0; done
	if [[ $ok == 1 ]]; then
		echo "build.sh: $out is up to date" >&2
		exit 0
	fi
fi

export CGO_ENABLED=1
start=$(date +%s)
echo "build.sh: building the Veraison services into $out" >&2
(cd "$tools" && go build -trimpath -ldflags "$ldflags" -o "$out/" "${services[@]}")
(cd "$tools" && go build -trimpath -o "$out/" ./cmd/veraison-testenv)
echo "build.sh: building veraison-psa" >&2
(cd "$client" && go build -trimpath -o "$out/" ./cmd/veraison-psa)
echo "$want" >"$out/.build-stamp"
echo "build.sh: done in $(($(date +%s) - start))s" >&2
