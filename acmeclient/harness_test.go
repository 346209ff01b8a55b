package acmeclient_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/acmeclient"
	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/attest-acme/attest-acme/verifier"
)

// caOptions change the development CA a test starts.
type caOptions struct {
	// dev edits the DevSetup (platform anchors, issuance rule).
	dev func(*caplugin.DevSetup)
	// lifetime, if set, makes certificates that short: the ACME
	// provisioner's default duration, no backdating.
	lifetime time.Duration
	// challengeClient fetches http-01 answers for step-ca.
	challengeClient *http01Client
}

// testCA is caplugin's development CA (what `attest-acme ca init` writes),
// served in-process on a loopback TLS listener with the embedded verifier.
type testCA struct {
	dir     string
	url     string // ACME directory
	roots   *x509.CertPool
	rootPEM string // path of the root certificate
	earKey  *ecdsa.PublicKey
	logs    *syncBuffer
}

func startCA(t *testing.T, o caOptions) *testCA {
	t.Helper()
	snpRoots, err := sim.SNPTestRootsPEM()
	if err != nil {
		t.Fatal(err)
	}
	tdxRoot, err := sim.TDXTestRootPEM()
	if err != nil {
		t.Fatal(err)
	}
	ds := caplugin.DevSetup{
		Dir:         t.TempDir(),
		Address:     "127.0.0.1:0",
		SNPRootsPEM: snpRoots,
		TDXRootsPEM: tdxRoot,
		TDXMRTD:     sim.DefaultTDXMRTD(),
	}
	if o.dev != nil {
		o.dev(&ds)
	}
	files, err := caplugin.InitDev(ds)
	if err != nil {
		t.Fatalf("InitDev: %v", err)
	}
	if o.lifetime > 0 {
		shortLifetimes(t, files.CAConfig, o.lifetime)
	}
	caCfg, pc, err := caplugin.LoadConfig(files.CAConfig)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	c := &testCA{dir: ds.Dir, rootPEM: files.Root, logs: &syncBuffer{}}
	if c.earKey, err = verifier.LoadVerificationKey(filepath.Join(ds.Dir, "secrets", "ear_signing_key.pem")); err != nil {
		t.Fatal(err)
	}
	opts := caplugin.Options{CA: caCfg, Plugin: pc, Logger: slog.New(slog.NewTextHandler(c.logs, nil))}
	if o.challengeClient != nil {
		opts.ChallengeClient = o.challengeClient
	}
	srv, err := caplugin.New(opts)
	if err != nil {
		t.Fatalf("caplugin.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	c.url = "https://" + ln.Addr().String() + "/acme/attest/directory"
	c.roots = x509.NewCertPool()
	for _, r := range srv.Roots() {
		c.roots.AddCert(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("CA log:\n%s", c.logs.String())
		}
	})
	return c
}

// shortLifetimes edits ca.json so that the ACME provisioner issues
// certificates of lifetime d from now (no backdating).
func shortLifetimes(t *testing.T, caJSON string, d time.Duration) {
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
	prov := auth["provisioners"].([]any)[0].(map[string]any)
	prov["claims"] = map[string]any{
		"minTLSCertDuration":     "1s",
		"defaultTLSCertDuration": d.String(),
		"maxTLSCertDuration":     "24h",
	}
	if b, err = json.MarshalIndent(cfg, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caJSON, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// client returns an acmeclient for the CA, storing into dir, with progress
// events collected.
func (c *testCA) client(t *testing.T, dir string, a evidence.Attester, edit ...func(*acmeclient.Config)) (*acmeclient.Client, *eventLog) {
	t.Helper()
	events := &eventLog{}
	cfg := acmeclient.Config{
		DirectoryURL: c.url,
		Storage:      acmeclient.NewStorage(dir),
		Attester:     a,
		HTTPClient:   acmeclient.NewHTTPClient(c.roots, 10*time.Second),
		PollTimeout:  20 * time.Second,
		Progress:     events.add,
	}
	for _, e := range edit {
		e(&cfg)
	}
	cl, err := acmeclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl, events
}

// checkIssued checks what an issuance must give: the certificate key is the
// attested key, the certificate chains to the CA's root and names the
// identifier, its EAR verifies under the verifier's key for the nonce of the
// challenge and names the same key as akpub, and the files on disk are that
// set.
func (c *testCA) checkIssued(t *testing.T, sv *acmeclient.Saved, id, platform string) *verifier.Result {
	t.Helper()
	leaf := sv.Leaf()
	if !sv.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Fatal("the certificate key is not the key the client made")
	}
	inter := x509.NewCertPool()
	for _, ic := range sv.Chain[1:] {
		inter.AddCert(ic)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("the certificate does not chain to the CA's root: %v", err)
	}
	if leaf.Subject.CommonName != id {
		t.Errorf("subject CN %q, want %q", leaf.Subject.CommonName, id)
	}
	nonce, err := hex.DecodeString(sv.Nonce)
	if err != nil || len(nonce) != 32 {
		t.Fatalf("resource nonce %q: not 32 bytes of hex", sv.Nonce)
	}
	// The EAR: signed by the verifier, for this challenge's nonce, with the
	// certificate key as akpub (Check compares it with the key passed).
	res, err := (&verifier.Checker{Key: c.earKey, MaxAge: time.Hour}).Check(sv.EAR, nonce, leaf.PublicKey)
	if err != nil {
		t.Fatalf("the EAR kept with the certificate does not check: %v", err)
	}
	if res.Platform != platform || res.Workload != "demo" {
		t.Errorf("EAR platform %q workload %q, want %q and demo", res.Platform, res.Workload, platform)
	}
	if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(res.Key) {
		t.Error("the EAR's akpub is not the certificate key")
	}
	// The files say the same.
	onDisk, err := acmeclient.NewStorage(filepath.Dir(filepath.Dir(sv.Paths.Dir))).Load(id)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !bytes.Equal(onDisk.Leaf().Raw, leaf.Raw) || !bytes.Equal(onDisk.EAR, sv.EAR) || onDisk.Nonce != sv.Nonce {
		t.Error("the stored set differs from what Obtain returned")
	}
	if st, err := os.Stat(sv.Paths.Key); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	ear, err := os.ReadFile(sv.Paths.EAR)
	if err != nil || !bytes.Equal(ear, sv.EAR) {
		t.Errorf("EAR file differs (%v)", err)
	}
	return res
}

// eventLog collects progress events.
type eventLog struct {
	mu     sync.Mutex
	events []acmeclient.Event
}

func (l *eventLog) add(e acmeclient.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// snapshot returns the events so far.
func (l *eventLog) snapshot() []acmeclient.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]acmeclient.Event(nil), l.events...)
}

// stages lists the stages reported, in order.
func (l *eventLog) stages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s []string
	for _, e := range l.events {
		s = append(s, string(e.Stage))
	}
	return s
}

// snapshot records every file and symlink under dir with its content or target.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
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

// sameSnapshot reports the differences between two snapshots.
func diffSnapshots(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			d = append(d, "removed "+k)
		} else if v != w {
			d = append(d, "changed "+k)
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

// tpmTrust returns what the development CA must trust for a TPM attester:
// its AK (PEM) and the PCR values it quotes.
func tpmTrust(t *testing.T, a *tpm.Attester) ([]byte, map[string]map[int][]byte) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(a.AKPublic())
	if err != nil {
		t.Fatal(err)
	}
	ev, err := a.Attest(context.Background(), make([]byte, 32))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	q, err := tpm.ParseQuote(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	pcrs := map[string]map[int][]byte{}
	for bank, m := range q.PCRs {
		pcrs[bank.String()] = m
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), pcrs
}

// http01Client is what step-ca fetches http-01 answers with in tests: every
// name resolves to the solver's loopback port.
type http01Client struct {
	addr string
	mu   sync.Mutex
	got  []string // URLs fetched
}

func (h *http01Client) Get(u string) (*http.Response, error) {
	h.mu.Lock()
	h.got = append(h.got, u)
	h.mu.Unlock()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, h.addr)
	}}
	defer tr.CloseIdleConnections()
	return (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
}

func (h *http01Client) LookupTxt(string) ([]string, error) { return nil, nil }

func (h *http01Client) TLSDial(network, addr string, cfg *tls.Config) (*tls.Conn, error) {
	return tls.Dial(network, addr, cfg)
}

func (h *http01Client) fetched() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// freePort returns a loopback address nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// syncBuffer collects log output from the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
