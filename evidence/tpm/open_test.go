package tpm

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOpenRejects(t *testing.T) {
	// A port nobody listens on: take one and give it back.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	file := filepath.Join(t.TempDir(), "not-a-device")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ spec, want string }{
		{"", "names no TPM"},
		{"tpmrm0", "names no TPM"},
		{"tcp://127.0.0.1", "want tcp://HOST:PORT"},
		{"tcp://127.0.0.1:http", "invalid port"},
		{"tcp://127.0.0.1:0", `port "0" is not a TCP port`},
		{"tcp://127.0.0.1:65535", `port "65535" is not a TCP port`},
		{"tcp://" + closed, "connecting to " + closed},
		{file, "not a device"},
		{filepath.Join(t.TempDir(), "missing"), "no such file"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			tpm, err := Open(context.Background(), tc.spec)
			if err == nil {
				tpm.Close()
			}
			wantErr(t, err, tc.want)
		})
	}
}

func TestOpenDevice(t *testing.T) {
	if _, err := os.Stat(DefaultDevice); err != nil {
		t.Skipf("no TPM device here (%v); the simulator and swtpm tests cover the rest", err)
	}
	tpm, err := Open(context.Background(), DefaultDevice)
	if err != nil {
		t.Fatalf("Open(%q): %v", DefaultDevice, err)
	}
	defer tpm.Close()
	a := newAttester(t, tpm, Config{})
	_, d := newBinding(t)
	if _, err := pinned(t, a.AKPublic()).Appraise(attest(t, a, d), d); err != nil {
		t.Fatalf("Appraise: %v", err)
	}
}

func TestOpenTCPGivesUpOnABusySwtpm(t *testing.T) {
	spec := startSwtpm(t)
	first, err := Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	second, err := Open(ctx, spec)
	if err == nil {
		second.Close()
	}
	wantErr(t, err, "does not answer", "another client")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v does not wrap the context's", err)
	}
}

func TestOpenSimulatorWithoutCgo(t *testing.T) {
	if haveSimulator {
		t.Skip("this build has the simulator")
	}
	_, err := Open(context.Background(), SimulatorSpec)
	wantErr(t, err, "needs a cgo build")
}
