package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/google/go-tpm/tpm2/transport"
)

// openSimulator opens the in-process simulator for one test and closes it at
// cleanup. The simulator is one per process: a second open blocks until the
// first is closed, so tests that use it run one after the other.
func openSimulator(t testing.TB) transport.TPMCloser {
	t.Helper()
	if !haveSimulator {
		t.Skip("the in-process simulator needs cgo; skipping")
	}
	tpm, err := OpenSimulator()
	if err != nil {
		t.Fatalf("OpenSimulator: %v", err)
	}
	t.Cleanup(func() {
		if err := tpm.Close(); err != nil {
			t.Errorf("closing the simulator: %v", err)
		}
	})
	return tpm
}

// startSwtpm runs swtpm on two free loopback ports with a fresh state
// directory, stops it at cleanup, and returns the spec Open takes for it. It
// skips the test when swtpm is not installed.
func startSwtpm(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		t.Skip("swtpm is not installed (apt-get install swtpm swtpm-tools); skipping the swtpm test")
	}
	var lastErr error
	for range 5 {
		port, err := freePortPair()
		if err != nil {
			t.Fatal(err)
		}
		state := t.TempDir()
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "socket", "--tpm2",
			"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
			"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1),
			"--flags", "not-need-init,startup-clear",
			"--tpmstate", "dir="+state)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting swtpm: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = waitListening(addr, exited); lastErr == nil {
			t.Cleanup(stop)
			return "tcp://" + addr
		}
		stop()
		lastErr = fmt.Errorf("%w: %s", lastErr, strings.TrimSpace(stderr.String()))
	}
	t.Fatalf("swtpm did not start: %v", lastErr)
	return ""
}

// freePortPair finds a loopback port P such that P and P+1 are free now.
func freePortPair() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1)))
		l.Close()
		if err == nil {
			l2.Close()
			return port, nil
		}
	}
	return 0, errors.New("no pair of free loopback ports")
}

// waitListening waits until addr accepts connections or the process exits.
func waitListening(addr string, exited <-chan error) error {
	for range 200 {
		select {
		case err := <-exited:
			return fmt.Errorf("swtpm exited: %v", err)
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("swtpm is not listening on %s", addr)
}

// newBinding builds a real kc for a fresh P-256 key and returns it with
// D = SHA-256(kc), as a client does before quoting.
func newBinding(t testing.TB) (kc, d []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, evidence.NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	kc, err = evidence.NewKC(key.Public(), nonce, time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return kc, evidence.Binding(crypto.SHA256, kc)
}

// newAttester makes an Attester on tpm and closes it at cleanup.
func newAttester(t testing.TB, tpm transport.TPM, cfg Config) *Attester {
	t.Helper()
	a, err := NewAttester(tpm, cfg)
	if err != nil {
		t.Fatalf("NewAttester: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Attester.Close: %v", err)
		}
	})
	return a
}

// attest quotes d with a and checks the media type.
func attest(t testing.TB, a *Attester, d []byte) []byte {
	t.Helper()
	ev, err := a.Attest(context.Background(), d)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if ev.MediaType != evidence.MediaTypeTPMQuote {
		t.Fatalf("media type %q, want %q", ev.MediaType, evidence.MediaTypeTPMQuote)
	}
	return ev.Data
}

// pinned returns a Verifier that pins the given AKs.
func pinned(t testing.TB, aks ...crypto.PublicKey) *Verifier {
	t.Helper()
	v, err := NewVerifier(Anchors{AKs: aks})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantErr fails unless err is non-nil and mentions every one of parts.
func wantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

// mutate decodes a quote map, lets change alter it, and encodes it again.
func mutate(t testing.TB, data []byte, change func(q *Quote)) []byte {
	t.Helper()
	q, err := ParseQuote(data)
	if err != nil {
		t.Fatalf("ParseQuote: %v", err)
	}
	change(q)
	out, err := q.Marshal()
	if err != nil {
		t.Fatalf("Quote.Marshal: %v", err)
	}
	return out
}

// fixture is one real quote from the simulator over a real kc's D.
type fixture struct {
	tpm  transport.TPM
	a    *Attester
	kc   []byte
	d    []byte
	data []byte
}

// newFixture opens the simulator and quotes a fresh kc's D with cfg.
func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	f := &fixture{tpm: openSimulator(t)}
	f.a = newAttester(t, f.tpm, cfg)
	f.kc, f.d = newBinding(t)
	f.data = attest(t, f.a, f.d)
	return f
}
