package caplugin_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	stepacme "github.com/smallstep/certificates/acme"
	"github.com/smallstep/certificates/authority/config"
	"go.step.sm/crypto/x509util"
	xacme "golang.org/x/crypto/acme"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/verifier"
)

// caSetup changes the development CA a test starts from.
type caSetup struct {
	// dev edits the DevSetup before InitDev (platform anchors, rules).
	dev func(*caplugin.DevSetup)
	// ca edits step-ca's configuration after loading.
	ca func(*config.Config)
	// plugin edits the plugin's configuration after loading.
	plugin func(t *testing.T, dir string, c *caplugin.Config)
	// verifier, if set, makes the verifier and the pinned EAR key from the
	// CA's directory, replacing the configured verifier.
	verifier func(t *testing.T, dir string) (verifier.Verifier, *ecdsa.PublicKey)
	// challengeClient is what step-ca fetches http-01 answers with.
	challengeClient stepacme.Client
}

// testCA is a CA made by InitDev in a temporary directory and served
// in-process on a loopback TLS listener.
type testCA struct {
	t      *testing.T
	dir    string
	files  *caplugin.DevFiles
	setup  caSetup
	addr   string
	roots  *x509.CertPool
	logs   *syncBuffer
	earKey *ecdsa.PublicKey // the key EARs verify under
	v      verifier.Verifier

	srv    *caplugin.Server
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// newTestCA initialises a development CA (simulated SEV-SNP and TDX anchors,
// a workload "demo" that may have any permanent-identifier) and starts it.
func newTestCA(t *testing.T, setup caSetup) *testCA {
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
	if setup.dev != nil {
		setup.dev(&ds)
	}
	files, err := caplugin.InitDev(ds)
	if err != nil {
		t.Fatalf("InitDev: %v", err)
	}
	c := &testCA{t: t, dir: ds.Dir, files: files, setup: setup, addr: "127.0.0.1:0", logs: &syncBuffer{}}
	if setup.verifier != nil {
		c.v, c.earKey = setup.verifier(t, ds.Dir)
	} else if c.earKey, err = verifier.LoadVerificationKey(filepath.Join(ds.Dir, "secrets", "ear_signing_key.pem")); err != nil {
		t.Fatal(err)
	}
	c.start()
	t.Cleanup(c.stop)
	return c
}

// start builds a server from the files on disk and serves it on c.addr.
func (c *testCA) start() {
	t := c.t
	t.Helper()
	caCfg, pc, err := caplugin.LoadConfig(c.files.CAConfig)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	caCfg.Logger = nil // step-ca's request log would flood the test output
	if c.setup.ca != nil {
		c.setup.ca(caCfg)
	}
	if c.setup.plugin != nil {
		c.setup.plugin(t, c.dir, pc)
	}
	c.reg = prometheus.NewRegistry()
	srv, err := caplugin.New(caplugin.Options{
		CA:              caCfg,
		Plugin:          pc,
		Verifier:        c.v,
		EARKey:          c.pinnedKey(),
		Logger:          slog.New(slog.NewTextHandler(c.logs, nil)),
		Registry:        c.reg,
		ChallengeClient: c.setup.challengeClient,
	})
	if err != nil {
		t.Fatalf("caplugin.New: %v", err)
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		srv.Close()
		t.Fatalf("listen: %v", err)
	}
	c.addr = ln.Addr().String()
	c.roots = x509.NewCertPool()
	for _, r := range srv.Roots() {
		c.roots.AddCert(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.srv, c.cancel, c.done = srv, cancel, make(chan error, 1)
	go func() { c.done <- srv.Serve(ctx, ln) }()
}

// stop shuts the server down gracefully and closes it (its database too).
func (c *testCA) stop() {
	if c.srv == nil {
		return
	}
	c.cancel()
	if err := <-c.done; err != nil {
		c.t.Errorf("Serve: %v", err)
	}
	if err := c.srv.Close(); err != nil {
		c.t.Errorf("Close: %v", err)
	}
	c.srv = nil
}

// restart stops the CA and starts a new one on the same files, database and
// address: nothing survives in memory.
func (c *testCA) restart() {
	c.stop()
	c.start()
}

// pinnedKey is the EAR key passed with a verifier of the test's own.
func (c *testCA) pinnedKey() *ecdsa.PublicKey {
	if c.v == nil {
		return nil
	}
	return c.earKey
}

func (c *testCA) directoryURL() string {
	return "https://" + c.addr + "/acme/attest/directory"
}

// client registers a new ACME account with golang.org/x/crypto/acme.
func (c *testCA) client(ctx context.Context) *xacme.Client {
	t := c.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cl := &xacme.Client{
		Key:          key,
		DirectoryURL: c.directoryURL(),
		HTTPClient: &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: c.roots, MinVersion: tls.VersionTLS12},
		}},
		// Retry only a bad nonce, never a server error: tests look at the
		// first answer, and retry a serverInternal themselves.
		RetryBackoff: func(n int, _ *http.Request, res *http.Response) time.Duration {
			if n > 3 || (res != nil && res.StatusCode >= 500) {
				return -1
			}
			return 10 * time.Millisecond
		},
	}
	if _, err := cl.Register(ctx, &xacme.Account{}, xacme.AcceptTOS); err != nil {
		t.Fatalf("register: %v", err)
	}
	return cl
}

// counter reads a counter of the CA's registry, 0 if absent.
func (c *testCA) counter(name string, labels map[string]string) float64 {
	mfs, err := c.reg.Gather()
	if err != nil {
		c.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			if m.GetHistogram() != nil {
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// attestedOrder is one permanent-identifier order in progress.
type attestedOrder struct {
	order    *xacme.Order
	chal     *xacme.Challenge // the device-attest-01 challenge
	authzURL string           // its authorization
	key      crypto.Signer    // the certificate key
}

// newAttestedOrder creates an order for the permanent-identifier id (and any
// extra identifiers) and returns its device-attest-01 challenge.
func newAttestedOrder(ctx context.Context, t *testing.T, cl *xacme.Client, id string, extra ...xacme.AuthzID) *attestedOrder {
	t.Helper()
	ids := append([]xacme.AuthzID{{Type: "permanent-identifier", Value: id}}, extra...)
	o, err := cl.AuthorizeOrder(ctx, ids)
	if err != nil {
		t.Fatalf("new order: %v", err)
	}
	ao := &attestedOrder{order: o}
	for _, u := range o.AuthzURLs {
		az, err := cl.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatalf("authorization: %v", err)
		}
		if az.Identifier.Type != "permanent-identifier" {
			continue
		}
		for _, ch := range az.Challenges {
			if ch.Type == "device-attest-01" {
				ao.chal, ao.authzURL = ch, u
			}
		}
	}
	if ao.chal == nil {
		t.Fatalf("order %s offers no device-attest-01 challenge", o.URI)
	}
	if ao.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	return ao
}

// answer builds the cmw answer with challenge.NewAnswer, as a client would.
func answer(ctx context.Context, t *testing.T, cl *xacme.Client, a evidence.Attester, chal *xacme.Challenge, pub crypto.PublicKey) *challenge.Answer {
	t.Helper()
	keyAuth, err := cl.HTTP01ChallengeResponse(chal.Token) // token "." thumbprint, whatever the type
	if err != nil {
		t.Fatal(err)
	}
	ans, err := challenge.NewAnswer(ctx, a, keyAuth, pub, time.Now())
	if err != nil {
		t.Fatalf("NewAnswer: %v", err)
	}
	return ans
}

// accept POSTs payload to the challenge (x/crypto/acme's Accept sends
// Challenge.Payload).
func accept(ctx context.Context, cl *xacme.Client, chal *xacme.Challenge, payload []byte) (*xacme.Challenge, error) {
	c := *chal
	c.Payload = payload
	return cl.Accept(ctx, &c)
}

// finalize waits for the order to be ready and finalizes it with a CSR for key.
func finalize(ctx context.Context, cl *xacme.Client, o *xacme.Order, key crypto.Signer, dnsNames ...string) ([]*x509.Certificate, error) {
	if _, err := cl.WaitOrder(ctx, o.URI); err != nil {
		return nil, fmt.Errorf("wait order: %w", err)
	}
	return finalizeNow(ctx, cl, o, key, dnsNames...)
}

// finalizeNow posts the CSR without waiting for the order: for orders that
// must never become ready (step-ca leaves an authorization whose only
// challenge failed pending, not invalid, so waiting would not end).
func finalizeNow(ctx context.Context, cl *xacme.Client, o *xacme.Order, key crypto.Signer, dnsNames ...string) ([]*x509.Certificate, error) {
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: dnsNames}, key)
	if err != nil {
		return nil, err
	}
	der, _, err := cl.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	for _, d := range der {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	return chain, nil
}

// problem returns err's ACME problem, failing the test if it has none.
func problem(t *testing.T, err error) *xacme.Error {
	t.Helper()
	var ae *xacme.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want an ACME problem, got %v", err)
	}
	return ae
}

// checkAttestedCertificate checks what an attested certificate must be: its
// key is the attested key, it chains to the CA's root, it has the
// permanent-identifier SAN, and its id-pe-cmw extension holds an EAR that
// verifies under the verifier's key, for nonce N, naming that key.
func (c *testCA) checkAttestedCertificate(t *testing.T, chain []*x509.Certificate, ans *challenge.Answer, key crypto.Signer, id, wantPlatform string) *verifier.Result {
	t.Helper()
	return c.checkCertificate(t, chain, ans, key, id, wantPlatform, false)
}

// checkCertificate is checkAttestedCertificate; bare says the EAR is a
// Veraison deployment's over the bare platform evidence: nonce D, no akpub.
func (c *testCA) checkCertificate(t *testing.T, chain []*x509.Certificate, ans *challenge.Answer, key crypto.Signer, id, wantPlatform string, bare bool) *verifier.Result {
	t.Helper()
	if len(chain) == 0 {
		t.Fatal("no certificate")
	}
	leaf := chain[0]
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Fatal("the certificate's key is not the attested key")
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	// The permanent-identifier is an otherName, which Go's x509 does not
	// read; with an empty subject the SAN extension is critical (RFC 5280
	// §4.2.1.6), so it must be marked handled before Verify.
	leafCopy := *leaf
	leafCopy.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(leaf.UnhandledCriticalExtensions),
		func(oid asn1.ObjectIdentifier) bool { return oid.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) })
	if _, err := leafCopy.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("the certificate does not chain to the CA's root: %v", err)
	}
	sans, err := x509util.ParseSubjectAlternativeNames(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if len(sans.PermanentIdentifiers) != 1 || sans.PermanentIdentifiers[0].Identifier != id {
		t.Fatalf("permanent-identifier SANs %+v, want exactly %q", sans.PermanentIdentifiers, id)
	}
	earTok, err := challenge.EARFromCertificate(leaf)
	if err != nil {
		t.Fatalf("id-pe-cmw: %v", err)
	}
	chk := &verifier.Checker{Key: c.earKey, MaxAge: time.Hour}
	var res *verifier.Result
	if bare {
		res, err = chk.CheckWithoutKey(earTok, ans.D)
	} else {
		res, err = chk.Check(earTok, ans.Nonce, key.Public())
	}
	if err != nil {
		t.Fatalf("the EAR in the certificate does not check: %v", err)
	}
	if res.Platform != wantPlatform || res.Workload == "" {
		t.Fatalf("EAR platform %q workload %q, want platform %q and a workload", res.Platform, res.Workload, wantPlatform)
	}
	return res
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

// logLine returns the first log line that contains every string in want.
func (s *syncBuffer) logLine(want ...string) (string, bool) {
	for line := range strings.SplitSeq(s.String(), "\n") {
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

// newSNP is the simulated SEV-SNP guest the development policy trusts.
func newSNP(t *testing.T, o sim.SNPOptions) *sim.SNP {
	t.Helper()
	g, err := sim.NewSNP(o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// devAppraiser is the real in-process verifier over the CA's development
// policy; key signs its EARs (nil: the policy's own key).
func devAppraiser(t *testing.T, dir string, key *ecdsa.PrivateKey) *verifier.Appraiser {
	t.Helper()
	pol, err := verifier.LoadPolicy(filepath.Join(dir, "verifier-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if key == nil {
		if key, _, err = verifier.LoadOrCreateSigningKey(filepath.Join(dir, "secrets", "ear_signing_key.pem")); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := verifier.NewSigner(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := verifier.NewAppraiser(verifier.AppraiserConfig{Policy: pol, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Modes of a gatedService.
const (
	serviceUp      int32 = iota
	serviceDown          // the connection is dropped: unreachable
	serviceSlow          // no answer until the client gives up
	serviceGarbage       // 200 with a body that is not a session
)

// gatedService is attest-acme's verifier service (verifier.Service over the
// real appraiser) on a loopback HTTP server, with a switch that makes it
// unreachable, slow or nonsensical.
type gatedService struct {
	mode atomic.Int32
	h    http.Handler
	url  string
}

func (g *gatedService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch g.mode.Load() {
	case serviceDown:
		panic(http.ErrAbortHandler) // drops the connection without an answer
	case serviceSlow:
		<-r.Context().Done()
	case serviceGarbage:
		w.Header().Set("Content-Type", "application/vnd.veraison.challenge-response-session+json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "<html>not a session</html>")
	default:
		g.h.ServeHTTP(w, r)
	}
}

// newGatedService starts the verifier service over the CA's development policy.
func newGatedService(t *testing.T, dir string) *gatedService {
	t.Helper()
	a := devAppraiser(t, dir, nil)
	svc, err := verifier.NewService(verifier.ServiceConfig{Verifier: a, MediaTypes: a.MediaTypes(), Key: a.VerificationKey().(*ecdsa.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedService{h: svc.Handler()}
	ts := httptest.NewServer(g)
	t.Cleanup(ts.Close)
	g.url = ts.URL
	return g
}

// remoteVerifier configures the CA to call g as a remote verifier of kind
// typ (service or veraison), with the development EAR key pinned.
func remoteVerifier(g **gatedService, typ string, timeout time.Duration) func(*testing.T, string, *caplugin.Config) {
	return func(t *testing.T, dir string, c *caplugin.Config) {
		if *g == nil {
			*g = newGatedService(t, dir)
		}
		c.Verifier = caplugin.VerifierConfig{Type: typ, URL: (*g).url, EARKey: filepath.Join(dir, "secrets", "ear_signing_key.pem"),
			Timeout: caplugin.Duration{Duration: timeout}}
	}
}

// ids returns the order, authorization and challenge IDs of an order's
// device-attest-01 challenge, from their URLs.
func (o *attestedOrder) ids() (order, authz, chal string) {
	order = o.order.URI[strings.LastIndex(o.order.URI, "/")+1:]
	parts := strings.Split(o.chal.URI, "/")
	return order, parts[len(parts)-2], parts[len(parts)-1]
}
