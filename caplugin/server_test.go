package caplugin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/attest-acme/attest-acme/challenge"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/certificates/authority/config"
	xacme "golang.org/x/crypto/acme"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
)

// http01Responder is the web server an http-01 client runs, and the
// acme.Client step-ca validates with, which sends every http-01 fetch to it
// (the names in the test do not resolve to it).
type http01Responder struct {
	srv     *httptest.Server
	answers sync.Map // path -> key authorization
	fetched sync.Map // path -> true
}

func newHTTP01Responder(t *testing.T) *http01Responder {
	r := &http01Responder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.fetched.Store(req.URL.Path, true)
		v, ok := r.answers.Load(req.URL.Path)
		if !ok {
			http.NotFound(w, req)
			return
		}
		io.WriteString(w, v.(string))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// Get implements step-ca's acme.Client.
func (r *http01Responder) Get(u string) (*http.Response, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	return r.srv.Client().Get(r.srv.URL + p.Path)
}

// LookupTxt implements step-ca's acme.Client; dns-01 is not tested.
func (r *http01Responder) LookupTxt(string) ([]string, error) {
	return nil, errors.New("no DNS in tests")
}

// TLSDial implements step-ca's acme.Client; tls-alpn-01 is not tested.
func (r *http01Responder) TLSDial(string, string, *tls.Config) (*tls.Conn, error) {
	return nil, errors.New("no tls-alpn-01 in tests")
}

// TestHTTP01StillWorks: a standard http-01 issuance against the same server
// gives a certificate without the attestation extension, and the plugin is
// not involved.
func TestHTTP01StillWorks(t *testing.T) {
	ctx := testContext(t)
	responder := newHTTP01Responder(t)
	ca := newTestCA(t, caSetup{challengeClient: responder, ca: func(c *config.Config) {
		c.CRL = &config.CRLConfig{Enabled: true, GenerateOnRevoke: true}
	}})
	cl := ca.client(ctx)

	const name = "app.localhost"
	o, err := cl.AuthorizeOrder(ctx, xacme.DomainIDs(name))
	if err != nil {
		t.Fatal(err)
	}
	az, err := cl.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	var chal *xacme.Challenge
	for _, c := range az.Challenges {
		if c.Type == "http-01" {
			chal = c
		}
	}
	if chal == nil {
		t.Fatalf("no http-01 challenge offered: %+v", az.Challenges)
	}
	keyAuth, err := cl.HTTP01ChallengeResponse(chal.Token)
	if err != nil {
		t.Fatal(err)
	}
	path := cl.HTTP01ChallengePath(chal.Token)
	responder.answers.Store(path, keyAuth)
	if _, err := cl.Accept(ctx, chal); err != nil {
		t.Fatalf("accept: %v", err)
	}
	if _, err := cl.WaitAuthorization(ctx, az.URI); err != nil {
		t.Fatalf("authorization: %v", err)
	}
	if _, ok := responder.fetched.Load(path); !ok {
		t.Fatal("step-ca never fetched the http-01 answer")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := finalize(ctx, cl, o, key, name)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	leaf := chain[0]
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != name {
		t.Fatalf("DNS names %v, want [%s]", leaf.DNSNames, name)
	}
	if _, err := challenge.EARFromCertificate(leaf); err == nil {
		t.Fatal("an http-01 certificate carries an attestation result")
	}
	if got := ca.counter("attest_acme_ca_challenges_total", nil) + ca.counter("attest_acme_ca_certificates_total", nil); got != 0 {
		t.Fatalf("the plugin counted %v events for an http-01 issuance", got)
	}

	// Revocation works as in step-ca: the account revokes its certificate
	// and the CRL lists it.
	if err := cl.RevokeCert(ctx, nil, leaf.Raw, xacme.CRLReasonKeyCompromise); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	res, err := cl.HTTPClient.Get("https://" + ca.addr + "/crl")
	if err != nil {
		t.Fatal(err)
	}
	der, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /crl: %d %v", res.StatusCode, err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("CRL: %v", err)
	}
	if !slices.ContainsFunc(crl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
		return e.SerialNumber.Cmp(leaf.SerialNumber) == 0
	}) {
		t.Fatalf("the CRL does not list the revoked certificate %s", leaf.SerialNumber)
	}
}

// TestConcurrentOrders: orders of several accounts validated and finalized
// at once do not interfere; each certificate carries its own key's EAR.
func TestConcurrentOrders(t *testing.T) {
	ctx := testContext(t)
	ca := newTestCA(t, caSetup{})
	snp := newSNP(t, sim.SNPOptions{})
	tdx, err := sim.NewTDX(sim.TDXOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("group", func(t *testing.T) {
		for i := range 6 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				cl := ca.client(ctx)
				id := fmt.Sprintf("vm-%d", i%3) // accounts share identifiers too
				o := newAttestedOrder(ctx, t, cl, id)
				a, platform := snpOrTDX(i, snp, tdx)
				ans := answer(ctx, t, cl, a, o.chal, o.key.Public())
				ch, err := accept(ctx, cl, o.chal, ans.Payload)
				if err != nil || ch.Status != "valid" {
					t.Fatalf("accept: %v, %+v", err, ch)
				}
				chain, err := finalize(ctx, cl, o.order, o.key)
				if err != nil {
					t.Fatalf("finalize: %v", err)
				}
				ca.checkAttestedCertificate(t, chain, ans, o.key, id, platform)
			})
		}
	})
	if got := ca.counter("attest_acme_ca_certificates_total", map[string]string{"result": "extended"}); got != 6 {
		t.Errorf("extended certificates counted %v, want 6", got)
	}
}

// TestMetricsAreServed: the metrics handler serves the plugin's metrics and
// the embedded verifier's, from the registry passed in.
func TestMetricsAreServed(t *testing.T) {
	ca := newTestCA(t, caSetup{})
	ctx := testContext(t)
	cl := ca.client(ctx)
	o := newAttestedOrder(ctx, t, cl, "vm-1")
	ans := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{}), o.chal, o.key.Public())
	if _, err := accept(ctx, cl, o.chal, ans.Payload); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	ca.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`attest_acme_ca_challenges_total{reason="ok",result="valid"} 1`,
		`attest_acme_ca_verifier_duration_seconds_count{outcome="ok"} 1`,
		`attest_acme_verifier_appraisals_total{platform="sev-snp",result="affirming"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func snpOrTDX(i int, snp *sim.SNP, tdx *sim.TDX) (evidence.Attester, string) {
	if i%2 == 0 {
		return snp, "sev-snp"
	}
	return tdx, "tdx"
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRunServesAndShutsDown: Run serves ca.json's address over TLS (health,
// roots, the ACME directory) and the metrics address, and returns nil when
// its context ends, as on SIGTERM.
func TestRunServesAndShutsDown(t *testing.T) {
	snpRoots, err := sim.SNPTestRootsPEM()
	if err != nil {
		t.Fatal(err)
	}
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	files, err := caplugin.InitDev(caplugin.DevSetup{Dir: t.TempDir(), Address: addr, MetricsAddress: metricsAddr, SNPRootsPEM: snpRoots})
	if err != nil {
		t.Fatal(err)
	}
	caCfg, pc, err := caplugin.LoadConfig(files.CAConfig)
	if err != nil {
		t.Fatal(err)
	}
	caCfg.Logger = nil
	srv, err := caplugin.New(caplugin.Options{CA: caCfg, Plugin: pc, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	for _, r := range srv.Roots() {
		roots.AddCert(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	get := func(u string) string {
		t.Helper()
		for {
			res, err := hc.Get(u)
			if err != nil {
				select {
				case err := <-done:
					t.Fatalf("Run ended early: %v", err)
				case <-time.After(20 * time.Millisecond): // not listening yet
					continue
				}
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %v", u, res.StatusCode, err)
			}
			return string(b)
		}
	}
	if got := get("https://" + addr + "/health"); !strings.Contains(got, `"ok"`) {
		t.Errorf("/health answered %s", got)
	}
	if got := get("https://" + addr + "/roots.pem"); !strings.Contains(got, "BEGIN CERTIFICATE") {
		t.Errorf("/roots.pem answered %s", got)
	}
	if got := get(files.DirectoryURL); !strings.Contains(got, "newOrder") {
		t.Errorf("ACME directory %s answered %s", files.DirectoryURL, got)
	}
	if got := get("http://" + metricsAddr + "/metrics"); !strings.Contains(got, "go_goroutines") {
		t.Errorf("the metrics address serves no metrics:\n%s", got)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after shutdown: %v", err)
	}
	if _, err := hc.Get("https://" + addr + "/health"); err == nil {
		t.Fatal("the CA still answers after shutdown")
	}
}
