// Package tpmtest starts swtpm for tests, as net/http/httptest starts
// servers: on free loopback ports, with a fresh state directory, stopped at
// the test's cleanup. It imports nothing of this project.
package tpmtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartSwtpm runs `swtpm socket --tpm2` with its command port on a free
// loopback port P and its control port on P+1, started as go-tpm's TCP
// transport needs it (not-need-init, startup-clear: no PowerOn), stops it at
// cleanup, and returns both addresses. It skips the test when swtpm is not
// installed (Debian: swtpm swtpm-tools).
func StartSwtpm(t testing.TB) (cmdAddr, ctrlAddr string) {
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
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "socket", "--tpm2",
			"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
			"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1),
			"--flags", "not-need-init,startup-clear",
			"--tpmstate", "dir="+t.TempDir())
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
		cmdAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = waitListening(cmdAddr, exited); lastErr == nil {
			t.Cleanup(stop)
			return cmdAddr, net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1))
		}
		stop()
		lastErr = fmt.Errorf("%w: %s", lastErr, strings.TrimSpace(stderr.String()))
	}
	t.Fatalf("swtpm did not start: %v", lastErr)
	return "", ""
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

// waitListening waits, a bounded number of times, until addr accepts
// connections or the process exits.
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
