package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"github.com/attest-acme/attest-acme/evidence/tpm/tpmtest"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tpm"
)

// clientTestCA is a development CA written by caplugin.InitDev and served
// by the "ca" subcommand itself, on a loopback port.
type clientTestCA struct {
	dir, url, root string
}

// startClientCA writes a development CA (the simulated SEV-SNP and TDX
// platforms trusted, unless dev changes it), optionally with certificates
// of lifetime d, and serves it with `attest-acme ca --config`.
func startClientCA(t *testing.T, dev func(*caplugin.DevSetup), lifetime time.Duration) *clientTestCA {
	t.Helper()
	snpRoots, err := sim.SNPTestRootsPEM()
	if err != nil {
		t.Fatal(err)
	}
	tdxRoot, err := sim.TDXTestRootPEM()
	if err != nil {
		t.Fatal(err)
	}
	addr := clientFreePort(t)
	ds := caplugin.DevSetup{
		Dir:         t.TempDir(),
		Address:     addr,
		DNSNames:    []string{"127.0.0.1", "localhost"},
		SNPRootsPEM: snpRoots,
		TDXRootsPEM: tdxRoot,
		TDXMRTD:     sim.DefaultTDXMRTD(),
	}
	if dev != nil {
		dev(&ds)
	}
	files, err := caplugin.InitDev(ds)
	if err != nil {
		t.Fatalf("InitDev: %v", err)
	}
	if lifetime > 0 {
		clientShortLifetimes(t, files.CAConfig, lifetime)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &clientSyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runCA(ctx, env{args: []string{"--config", files.CAConfig}, stdin: strings.NewReader(""), stdout: logs, stderr: logs})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ca: %v", err)
		}
		if t.Failed() {
			t.Logf("CA log:\n%s", logs.String())
		}
	})
	c := &clientTestCA{dir: ds.Dir, url: files.DirectoryURL, root: files.Root}
	// Bounded wait for /health.
	pool := x509.NewCertPool()
	rootPEM, err := os.ReadFile(files.Root)
	if err != nil || !pool.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("root %s: %v", files.Root, err)
	}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for range 200 {
		select {
		case err := <-done:
			t.Fatalf("the CA stopped: %v\n%s", err, logs.String())
		default:
		}
		if resp, err := hc.Get("https://" + addr + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the CA does not answer on %s", addr)
	return nil
}

// clientShortLifetimes edits ca.json so that the ACME provisioner issues
// certificates of lifetime d from now (no backdating).
func clientShortLifetimes(t *testing.T, caJSON string, d time.Duration) {
	t.Helper()
	b, err := os.ReadFile(caJSON)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	auth := cfg["authority"].(map[string]any)
	auth["backdate"] = "0s"
	auth["provisioners"].([]any)[0].(map[string]any)["claims"] = map[string]any{
		"minTLSCertDuration": "1s", "defaultTLSCertDuration": d.String(), "maxTLSCertDuration": "24h",
	}
	if b, err = json.MarshalIndent(cfg, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caJSON, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// clientResult is what one client subcommand did.
type clientResult struct {
	code           int
	stdout, stderr string
}

// runClient runs a client subcommand the way realMain does (exitCode prints
// the error), with cmd's dependencies and ctx.
func runClient(ctx context.Context, cmd *clientCmd, args ...string) clientResult {
	var out, errb clientSyncBuffer
	e := env{args: args[1:], stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	var err error
	switch args[0] {
	case "obtain":
		err = cmd.obtain(ctx, e)
	case "renew":
		err = cmd.renew(ctx, e)
	case "run":
		err = cmd.run(ctx, e)
	default:
		panic("not a client subcommand: " + args[0])
	}
	code := exitCode(&errb, args[0], err)
	return clientResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// args returns the common flags for the CA and dir.
func (c *clientTestCA) args(sub, dir, id, attester string, more ...string) []string {
	return append([]string{sub, "--server", c.url, "--ca-root", c.root, "--dir", dir, "--identifier", id, "--attester", attester}, more...)
}

// errorLines are stderr's lines that main's exitCode wrote.
func errorLines(stderr, sub string) []string {
	var l []string
	for line := range strings.SplitSeq(stderr, "\n") {
		if strings.HasPrefix(line, "attest-acme "+sub+": ") {
			l = append(l, line)
		}
	}
	return l
}

// clientSnapshot records every file and symlink under dir.
func clientSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return filepath.SkipAll
			}
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = "-> " + target
		case d.IsDir():
			m[rel+"/"] = ""
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func clientDiff(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			d = append(d, "changed or removed "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	sort.Strings(d)
	return d
}

func clientFreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// clientSyncBuffer is a bytes.Buffer safe for concurrent use.
type clientSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *clientSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *clientSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clientStartSwtpm runs swtpm for the test and returns its command address;
// it skips the test when swtpm is not installed.
func clientStartSwtpm(t *testing.T) string {
	t.Helper()
	cmdAddr, _ := tpmtest.StartSwtpm(t)
	return cmdAddr
}

// clientTPMTrust opens the TPM at addr once to learn its AK and PCR values,
// for the CA to trust; the AK is derived from the TPM's seed, so the
// subcommand gets the same one.
func clientTPMTrust(t *testing.T, addr string) func(*caplugin.DevSetup) {
	t.Helper()
	ctx := context.Background()
	tr, err := tpm.Open(ctx, "tcp://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	a, err := tpm.NewAttester(tr, tpm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	der, err := x509.MarshalPKIXPublicKey(a.AKPublic())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(ctx, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	q, err := tpm.ParseQuote(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	pcrs := map[string]map[int][]byte{}
	for bank, m := range q.PCRs {
		pcrs[bank.String()] = m
	}
	akPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return func(ds *caplugin.DevSetup) {
		ds.SNPRootsPEM, ds.TDXRootsPEM, ds.TDXMRTD = nil, nil, nil
		ds.TPMAKPublicKeysPEM, ds.TPMPCRs = akPEM, pcrs
	}
}

// jsonLines parses stdout of --json: one object a line.
func jsonLines(t *testing.T, stdout string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("--json line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}
