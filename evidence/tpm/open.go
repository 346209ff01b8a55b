package tpm

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/google/go-tpm/tpm2/transport/tcp"
)

// Ways to name a TPM for Open.
const (
	// DefaultDevice is the kernel's TPM resource manager: it flushes what a
	// process leaves loaded and lets several processes share the TPM.
	DefaultDevice = "/dev/tpmrm0"
	// SimulatorSpec names the in-process simulator.
	SimulatorSpec = "simulator"
)

// Open opens the TPM that spec names:
//
//   - a path, such as "/dev/tpmrm0": a TPM character device (OpenDevice);
//   - "tcp://HOST:PORT": a TPM over TCP such as swtpm, with its control
//     (platform) port on PORT+1, or named with "?ctrl=HOST:PORT" (OpenTCP);
//   - "simulator": the in-process simulator (OpenSimulator).
//
// ctx bounds connecting to a TPM over TCP; opening the simulator waits for
// any other handle to it to close, whatever ctx says. The caller closes what
// it gets.
func Open(ctx context.Context, spec string) (transport.TPMCloser, error) {
	switch {
	case spec == SimulatorSpec:
		return OpenSimulator()
	case strings.HasPrefix(spec, "/"):
		return OpenDevice(spec)
	case strings.HasPrefix(spec, "tcp://"):
		u, err := url.Parse(spec)
		if err != nil {
			return nil, fmt.Errorf("tpm: %q: %w", spec, err)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil {
			return nil, fmt.Errorf("tpm: %q: want tcp://HOST:PORT: %w", spec, err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 || p == 65535 {
			return nil, fmt.Errorf("tpm: %q: port %q is not a TCP port below 65535", spec, port)
		}
		ctrl := u.Query().Get("ctrl")
		if ctrl == "" {
			ctrl = net.JoinHostPort(host, strconv.FormatUint(p+1, 10))
		}
		return OpenTCP(ctx, u.Host, ctrl)
	default:
		return nil, fmt.Errorf("tpm: %q names no TPM: want a device path, tcp://HOST:PORT or %q", spec, SimulatorSpec)
	}
}

// OpenDevice opens a TPM character device, such as DefaultDevice. Prefer the
// resource manager (/dev/tpmrm*) to the raw device (/dev/tpm*), which only
// one process may hold.
func OpenDevice(path string) (transport.TPMCloser, error) {
	t, err := linuxtpm.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tpm: opening %s: %w", path, err)
	}
	if err := probe(t); err != nil {
		t.Close()
		return nil, fmt.Errorf("tpm: %s: %w", path, err)
	}
	return t, nil
}

// OpenTCP connects to a TPM that speaks the reference simulator's TCP
// protocol on cmdAddr (commands) and ctrlAddr (platform control), such as
// swtpm. It sends no power-on: the TPM must already be powered and started,
// as swtpm is when run with
//
//	swtpm socket --tpm2 --server type=tcp,port=P --ctrl type=tcp,port=P+1 \
//	    --flags not-need-init,startup-clear --tpmstate dir=DIR
//
// swtpm serves one connection at a time: while another client holds it, the
// TPM accepts the connection but does not answer. OpenTCP then gives up when
// ctx is done.
func OpenTCP(ctx context.Context, cmdAddr, ctrlAddr string) (transport.TPMCloser, error) {
	t, err := tcp.Open(tcp.Config{CommandAddress: cmdAddr, PlatformAddress: ctrlAddr})
	if err != nil {
		return nil, fmt.Errorf("tpm: connecting to %s: %w", cmdAddr, err)
	}
	done := make(chan error, 1)
	go func() { done <- probe(t) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Close() // unblocks the probe
		<-done
		return nil, fmt.Errorf("tpm: %s does not answer (is another client connected?): %w", cmdAddr, ctx.Err())
	}
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("tpm: %s: %w (is it started? swtpm needs --flags not-need-init,startup-clear)", cmdAddr, err)
	}
	return t, nil
}

// probe asks the TPM for its manufacturer, so that a TPM that does not
// answer fails when it is opened rather than at the first quote.
func probe(t transport.TPM) error {
	_, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(tpm2.TPMPTManufacturer),
		PropertyCount: 1,
	}.Execute(t)
	if err != nil {
		return fmt.Errorf("TPM does not answer: %w", err)
	}
	return nil
}
