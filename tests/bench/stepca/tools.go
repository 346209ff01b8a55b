//go:build tools

// Package stepca is a module of its own that pins stock step-ca v0.30.2 (the
// version caplugin embeds), so that scripts/bench.sh can build the unmodified
// step-ca binary as a baseline beside attest-acme's CA:
//
//	cd tests/bench/stepca && CGO_ENABLED=0 go build -o step-ca github.com/smallstep/certificates/cmd/step-ca
//
// It is kept apart from the main module because cmd/step-ca needs modules
// (cloud KMS clients, ...) that attest-acme does not.
package stepca

import _ "github.com/smallstep/certificates/cmd/step-ca"
