//go:build cgo

package tpm

import (
	"fmt"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/simulator"
)

// OpenSimulator starts the in-process TPM simulator (Microsoft's reference
// implementation, built with cgo) and returns it manufactured afresh,
// powered on and started: new hierarchy seeds, so a new AK, each time.
//
// The simulator is one global instance per process: while one handle is
// open, another OpenSimulator blocks until it is closed. Close it when done,
// and do not open it twice from the same goroutine.
func OpenSimulator() (transport.TPMCloser, error) {
	t, err := simulator.OpenSimulator()
	if err != nil {
		return nil, fmt.Errorf("tpm: starting the simulator: %w", err)
	}
	return t, nil
}
