package harness

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/verifier"
)

// Names the development CA uses.
const (
	// Provisioner is the ACME provisioner's name.
	Provisioner = "attest"
	// Workload is the development policy's workload name.
	Workload = "demo"
)

// Metric names and labels the CA plugin exports (caplugin/metrics.go).
const (
	MetricChallenges   = "attest_acme_ca_challenges_total"
	MetricCertificates = "attest_acme_ca_certificates_total"
	MetricVerifier     = "attest_acme_ca_verifier_duration_seconds"
)

// Options change the development CA that Start serves. The zero value is a
// CA whose embedded verifier trusts the simulated SEV-SNP and TDX test
// anchors, with one workload ("demo": a simulated SEV-SNP guest with an
// all-zero MEASUREMENT, a simulated TD with sim.DefaultTDXMRTD) that may
// have any permanent-identifier and DNS names under ".localhost".
type Options struct {
	// Dev edits the setup before caplugin.InitDev writes it: trust anchors
	// (TPM AKs and PCRs), the workload's name, its identifier patterns.
	Dev func(*caplugin.DevSetup)
	// Configure runs after InitDev and after the configuration was loaded,
	// before the server is built: it may rewrite files in Setup.Dir (the
	// verifier policy is read when the server is built) and edit the
	// plugin's configuration (verifier, issuance rules, accepted statuses).
	Configure func(*Setup) error
	// Verifier, if set, replaces the configured verifier; EARKey, the key
	// its EARs verify under, must be set with it.
	Verifier verifier.Verifier
	EARKey   *ecdsa.PublicKey
	// Now is the CA's clock (kc, EAR and record freshness); nil means
	// time.Now.
	Now func() time.Time
	// Logger receives the CA's log lines as well as CA.Logs; nil means
	// CA.Logs only.
	Logger *slog.Logger
}

// Setup is what Options.Configure may change.
type Setup struct {
	// Dir is the CA's directory.
	Dir string
	// Files names what InitDev wrote (ca.json, the root, the verifier policy).
	Files *caplugin.DevFiles
	// Plugin is the plugin's configuration, as loaded from ca.json.
	Plugin *caplugin.Config
}

// EARSigningKeyPath is the development policy's EAR signing key in Dir.
func (s *Setup) EARSigningKeyPath() string { return earKeyPath(s.Dir) }

func earKeyPath(dir string) string { return filepath.Join(dir, "secrets", "ear_signing_key.pem") }

// CA is a running development CA.
type CA struct {
	// Dir is the CA's directory (InitDev's files, its bbolt database).
	Dir string
	// Files names what InitDev wrote.
	Files *caplugin.DevFiles
	// Addr is the loopback address the CA serves TLS on.
	Addr string
	// Roots holds the CA's root certificates.
	Roots *x509.CertPool
	// EARKey is the key the CA's EARs verify under.
	EARKey *ecdsa.PublicKey
	// Registry holds the CA's metrics.
	Registry *prometheus.Registry
	// Logs collects the CA's log lines.
	Logs *LogBuffer

	srv    *caplugin.Server
	dbPath string
	cancel context.CancelFunc
	done   chan error

	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool
}

// Start initialises a development CA in a new temporary directory and serves
// it in process on 127.0.0.1. Close stops it; the directory is the caller's
// to remove (StartT uses the test's temporary directory).
func Start(o Options) (*CA, error) {
	dir, err := os.MkdirTemp("", "attest-acme-harness-")
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	return start(dir, o)
}

// StartT is Start in t.TempDir(), failing the test on error and closing the
// CA when the test ends.
func StartT(tb testing.TB, o Options) *CA {
	tb.Helper()
	c, err := start(tb.TempDir(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("harness: closing the CA: %v", err)
		}
	})
	return c
}

func start(dir string, o Options) (*CA, error) {
	snpRoots, err := sim.SNPTestRootsPEM()
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	tdxRoot, err := sim.TDXTestRootPEM()
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	ds := caplugin.DevSetup{
		Dir:         dir,
		Address:     "127.0.0.1:0",
		Provisioner: Provisioner,
		Workload:    Workload,
		SNPRootsPEM: snpRoots,
		TDXRootsPEM: tdxRoot,
		TDXMRTD:     sim.DefaultTDXMRTD(),
		Now:         o.Now,
	}
	if o.Dev != nil {
		o.Dev(&ds)
	}
	files, err := caplugin.InitDev(ds)
	if err != nil {
		return nil, fmt.Errorf("harness: InitDev: %w", err)
	}
	caCfg, pc, err := caplugin.LoadConfig(files.CAConfig)
	if err != nil {
		return nil, fmt.Errorf("harness: LoadConfig: %w", err)
	}
	caCfg.Logger = nil // step-ca's request log would flood test output
	if o.Configure != nil {
		if err := o.Configure(&Setup{Dir: ds.Dir, Files: files, Plugin: pc}); err != nil {
			return nil, fmt.Errorf("harness: Configure: %w", err)
		}
	}

	c := &CA{Dir: ds.Dir, Files: files, Logs: &LogBuffer{}, Registry: prometheus.NewRegistry()}
	if caCfg.DB != nil && caCfg.DB.Type == "bbolt" {
		c.dbPath = caCfg.DB.DataSource
	}
	earKey := o.EARKey
	switch {
	case o.Verifier != nil && earKey == nil:
		return nil, errors.New("harness: Options.Verifier needs Options.EARKey")
	case o.Verifier != nil:
		c.EARKey = earKey
	default:
		if pc.Verifier.Type == caplugin.VerifierEmbedded {
			c.EARKey, err = verifier.LoadVerificationKey(earKeyPath(ds.Dir))
		} else {
			c.EARKey, err = verifier.LoadVerificationKey(pluginPath(ds.Dir, pc.Verifier.EARKey))
		}
		if err != nil {
			return nil, fmt.Errorf("harness: EAR key: %w", err)
		}
	}
	var h slog.Handler = slog.NewTextHandler(c.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	if o.Logger != nil {
		h = teeHandler{h, o.Logger.Handler()}
	}
	srv, err := caplugin.New(caplugin.Options{
		CA:       caCfg,
		Plugin:   pc,
		Verifier: o.Verifier,
		EARKey:   earKey,
		Logger:   slog.New(h),
		Registry: c.Registry,
		Now:      o.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("harness: caplugin.New: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("harness: listen: %w", err)
	}
	c.Addr = ln.Addr().String()
	c.Roots = x509.NewCertPool()
	for _, r := range srv.Roots() {
		c.Roots.AddCert(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.srv, c.cancel, c.done = srv, cancel, make(chan error, 1)
	go func() { c.done <- srv.Serve(ctx, ln) }()
	return c, nil
}

// pluginPath resolves a path of the plugin's configuration the way the
// plugin does: relative to ca.json's directory.
func pluginPath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// DirectoryURL is the ACME directory of the CA's provisioner.
func (c *CA) DirectoryURL() string {
	return "https://" + c.Addr + "/acme/" + Provisioner + "/directory"
}

// HTTPClient returns an HTTP client that trusts the CA's roots.
func (c *CA) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: c.Roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 64,
	}}
}

// Close shuts the server down gracefully and closes it (its database too).
// It is safe to call more than once.
func (c *CA) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		err := <-c.done
		c.closeErr = errors.Join(err, c.srv.Close())
		c.closed.Store(true)
	})
	return c.closeErr
}

// Counter returns the value of a counter (or a histogram's sample count) of
// the CA's registry summed over the series whose labels include labels; 0
// when there is none.
func (c *CA) Counter(name string, labels map[string]string) (float64, error) {
	mfs, err := c.Registry.Gather()
	if err != nil {
		return 0, fmt.Errorf("harness: metrics: %w", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum, nil
}

// AttestedCertificates is how many attested certificates the CA has signed:
// those its enforcer extended with an EAR.
func (c *CA) AttestedCertificates() (float64, error) {
	return c.Counter(MetricCertificates, map[string]string{"result": "extended"})
}

// StoredCertificates counts the certificates step-ca recorded in its
// database (every certificate it signed, attested or not). The database is
// locked while the CA runs: call it after Close.
func (c *CA) StoredCertificates() (int, error) {
	if c.dbPath == "" {
		return 0, errors.New("harness: StoredCertificates needs the development CA's bbolt database")
	}
	if !c.closed.Load() {
		return 0, errors.New("harness: StoredCertificates needs the CA closed first (its database is locked)")
	}
	db, err := bolt.Open(c.dbPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("harness: opening %s: %w", c.dbPath, err)
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(stepCertsTable))
		if b == nil {
			return nil
		}
		n = b.Stats().KeyN
		return nil
	})
	return n, err
}

// stepCertsTable is the table in which step-ca records every certificate it
// signs (step-ca's db package).
const stepCertsTable = "x509_certs"

// LogBuffer collects log output from the CA's goroutines.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Line returns the first line that contains every string in want.
func (l *LogBuffer) Line(want ...string) (string, bool) {
	for line := range strings.SplitSeq(l.String(), "\n") {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return line, true
		}
	}
	return "", false
}

// teeHandler sends each record to two handlers.
type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	if t.a.Enabled(ctx, r.Level) {
		errs = append(errs, t.a.Handle(ctx, r.Clone()))
	}
	if t.b.Enabled(ctx, r.Level) {
		errs = append(errs, t.b.Handle(ctx, r))
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{t.a.WithGroup(name), t.b.WithGroup(name)}
}
