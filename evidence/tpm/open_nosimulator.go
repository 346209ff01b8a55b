//go:build !cgo

package tpm

import (
	"errors"

	"github.com/google/go-tpm/tpm2/transport"
)

// OpenSimulator would start the in-process TPM simulator, which needs cgo;
// this build has none, so it always fails. Use swtpm over TCP instead.
func OpenSimulator() (transport.TPMCloser, error) {
	return nil, errors.New("tpm: the in-process simulator needs a cgo build (CGO_ENABLED=1); use swtpm over TCP instead")
}
