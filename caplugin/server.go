package caplugin

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/smallstep/certificates/acme"
	acmeAPI "github.com/smallstep/certificates/acme/api"
	acmeNoSQL "github.com/smallstep/certificates/acme/db/nosql"
	"github.com/smallstep/certificates/api"
	"github.com/smallstep/certificates/authority"
	"github.com/smallstep/certificates/authority/admin"
	adminAPI "github.com/smallstep/certificates/authority/admin/api"
	"github.com/smallstep/certificates/authority/config"
	"github.com/smallstep/certificates/ca"
	"github.com/smallstep/certificates/db"
	"github.com/smallstep/certificates/logging"
	"github.com/smallstep/certificates/middleware/requestid"
	"github.com/smallstep/certificates/monitoring"
	"github.com/smallstep/certificates/scep"
	scepAPI "github.com/smallstep/certificates/scep/api"
	"github.com/smallstep/nosql"
	"go.step.sm/crypto/x509util"

	"github.com/attest-acme/attest-acme/verifier"
)

// Options are what New needs to build a CA server.
type Options struct {
	// CA is step-ca's configuration (ca.json), for example from LoadConfig.
	// It must have a "db" section: ACME and the plugin keep their state there.
	CA *config.Config
	// Plugin is the plugin's configuration, for example from LoadConfig.
	Plugin *Config
	// Verifier, if set, replaces the verifier Plugin.Verifier describes
	// (tests; an embedding program). EARKey must then be set too.
	Verifier verifier.Verifier
	// EARKey is the pinned EAR verification key to use with Verifier.
	EARKey *ecdsa.PublicKey
	// Password decrypts the intermediate key when it is encrypted; empty
	// means ca.json's "password", as in step-ca.
	Password []byte
	// Logger receives the plugin's log lines; nil means slog.Default().
	Logger *slog.Logger
	// Registry receives the plugin's (and the embedded verifier's) metrics;
	// nil means a new registry of the server's own, with the Go runtime and
	// process collectors, never the global one.
	Registry *prometheus.Registry
	// Now is the clock for kc, EAR and record freshness; nil means time.Now.
	Now func() time.Time
	// ChallengeClient is what step-ca uses to fetch http-01, tls-alpn-01 and
	// dns-01 answers; nil means step-ca's default client.
	ChallengeClient acme.Client
}

// Server is step-ca's CA server with the cmw format added: the CA API
// (/health, /roots, /sign, /renew, /revoke, /crl, ...), the ACME API under
// /acme and /2.0/acme, the admin API and SCEP when ca.json enables them.
type Server struct {
	cfg      *config.Config
	plugin   *Config
	auth     *authority.Authority
	renewer  *ca.TLSRenewer
	tls      *tls.Config
	handler  http.Handler
	insecure http.Handler // nil unless SCEP or the CRL is served over HTTP
	baseCtx  context.Context
	registry *prometheus.Registry
	log      *slog.Logger
	compact  nosql.Compactor
	write    time.Duration

	closeOnce sync.Once
	closeErr  error
}

// New builds the CA from step-ca's exported pieces, the way ca.New does, but
// with the ACME database decorated (acmeDB) and the certificate enforcer
// installed. It opens the database and starts the renewal of the CA's own
// TLS certificate; Close releases them.
func New(opts Options) (*Server, error) {
	cfg, pc := opts.CA, opts.Plugin
	if cfg == nil || pc == nil {
		return nil, errors.New("caplugin: Options.CA and Options.Plugin are required")
	}
	if cfg.DB == nil {
		return nil, errors.New("caplugin: ca.json has no \"db\" section; ACME and attest-acme keep their state in step-ca's database")
	}
	if len(cfg.DNSNames) == 0 {
		return nil, errors.New("caplugin: ca.json has no dnsNames")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	metrics, err := NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("caplugin: metrics: %w", err)
	}
	policy, err := NewIssuancePolicy(pc.Issuance)
	if err != nil {
		return nil, fmt.Errorf("caplugin: %w", err)
	}
	accept, err := pc.acceptedTiers()
	if err != nil {
		return nil, fmt.Errorf("caplugin: %w", err)
	}

	v, earKey := opts.Verifier, opts.EARKey
	if v == nil {
		if v, earKey, err = buildVerifier(pc, reg, now, log); err != nil {
			return nil, fmt.Errorf("caplugin: verifier: %w", err)
		}
	} else if earKey == nil {
		return nil, errors.New("caplugin: Options.Verifier needs Options.EARKey")
	}

	// The database is opened here, not inside authority.New, so that the
	// ACME database and the plugin's store share it.
	authDB, err := db.New(cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("caplugin: opening the database: %w", err)
	}
	ndb, ok := authDB.(nosql.DB)
	if !ok {
		_ = authDB.Shutdown()
		return nil, fmt.Errorf("caplugin: database type %q is not a nosql database", cfg.DB.Type)
	}
	st, err := newStore(ndb)
	if err != nil {
		_ = authDB.Shutdown()
		return nil, fmt.Errorf("caplugin: %w", err)
	}
	inner, err := acmeNoSQL.New(ndb)
	if err != nil {
		_ = authDB.Shutdown()
		return nil, fmt.Errorf("caplugin: ACME database: %w", err)
	}
	bare := pc.Verifier.Type == VerifierVeraison
	acmeDB := &acmeDB{
		DB:    inner,
		store: st,
		validator: &validator{
			db:       inner,
			store:    st,
			verifier: v,
			checker:  &verifier.Checker{Key: earKey, Now: now, Accept: accept},
			bare:     bare,
			timeout:  pc.Verifier.Timeout.Duration,
			policy:   policy,
			now:      now,
			log:      log,
			metrics:  metrics,
		},
	}
	enf := &enforcer{store: st, policy: policy, maxLifetime: pc.MaxCertificateLifetime.Duration, now: now, log: log, metrics: metrics}

	// As step-ca does, a password in ca.json is used when none is given.
	password := opts.Password
	if len(password) == 0 && cfg.Password != "" {
		password = []byte(cfg.Password)
	}
	// The webhook client gets the CA's client TLS configuration once it exists.
	webhookTransport := http.DefaultTransport.(*http.Transport).Clone()
	auth, err := authority.New(cfg,
		authority.WithDatabase(authDB),
		authority.WithPassword(password),
		authority.WithIssuerPassword(password),
		authority.WithX509Enforcers(enf),
		authority.WithWebhookClient(&http.Client{Transport: webhookTransport}),
	)
	if err != nil {
		_ = authDB.Shutdown()
		return nil, fmt.Errorf("caplugin: step-ca authority: %w", err)
	}

	s := &Server{cfg: cfg, plugin: pc, auth: auth, registry: reg, log: log}
	s.write = 15 * time.Second
	if t := pc.Verifier.Timeout.Duration + 15*time.Second; t > s.write {
		s.write = t
	}
	if c, ok := ndb.(nosql.Compactor); ok {
		s.compact = c
	}
	var clientTLS *tls.Config
	if s.tls, clientTLS, err = s.tlsConfigs(); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("caplugin: TLS: %w", err)
	}
	webhookTransport.TLSClientConfig = clientTLS

	if err := s.routes(acmeDB, opts.ChallengeClient); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("caplugin: %w", err)
	}
	return s, nil
}

// tlsConfigs starts the renewal of the CA's own certificate and returns the
// server and client TLS configurations, as ca.New does.
func (s *Server) tlsConfigs() (*tls.Config, *tls.Config, error) {
	crt, err := s.auth.GetTLSCertificate()
	if err != nil {
		return nil, nil, err
	}
	s.renewer, err = ca.NewTLSRenewer(crt, s.auth.GetTLSCertificate)
	if err != nil {
		return nil, nil, err
	}
	s.renewer.Run()

	var server *tls.Config
	if s.cfg.TLS != nil {
		server = s.cfg.TLS.TLSConfig()
	} else {
		server = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	// With no static certificate, GetCertificate answers clients that send
	// no SNI (an IP address) too.
	server.Certificates = nil
	client := server.Clone()
	server.GetCertificate = s.renewer.GetCertificateForCA
	client.GetClientCertificate = s.renewer.GetClientCertificate

	clientCAs := x509.NewCertPool()
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	for _, c := range s.auth.GetRootCertificates() {
		clientCAs.AddCert(c)
		roots.AddCert(c)
	}
	for _, der := range crt.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, err
		}
		clientCAs.AddCert(c)
		roots.AddCert(c)
	}
	server.ClientAuth = tls.VerifyClientCertIfGiven // mTLS for /renew
	server.ClientCAs = clientCAs
	client.RootCAs = roots
	return server, client, nil
}

// routes mounts step-ca's handlers as ca.New does and builds the base context.
func (s *Server) routes(acmeDB acme.DB, client acme.Client) error {
	cfg := s.cfg
	mux := chi.NewRouter()
	mux.Use(middleware.GetHead)
	insecureMux := chi.NewRouter()
	insecureMux.Use(middleware.GetHead)

	api.Route(mux)
	mux.Route("/1.0", func(r chi.Router) { api.Route(r) })
	insecureMux.Get("/crl", api.CRL)
	insecureMux.Get("/1.0/crl", api.CRL)

	dns := cfg.DNSNames[0]
	u, err := url.Parse("https://" + cfg.Address)
	if err != nil {
		return fmt.Errorf("ca.json address %q: %w", cfg.Address, err)
	}
	if port := u.Port(); port != "" && port != "443" {
		dns = net.JoinHostPort(dns, port)
	}
	linker := acme.NewLinker(dns, "acme")
	mux.Route("/acme", func(r chi.Router) { acmeAPI.Route(r) })
	mux.Route("/2.0/acme", func(r chi.Router) { acmeAPI.Route(r) })

	if cfg.AuthorityConfig.EnableAdmin && s.auth.GetAdminDatabase() != nil {
		mux.Route("/admin", func(r chi.Router) {
			adminAPI.Route(r,
				adminAPI.WithACMEResponder(adminAPI.NewACMEAdminResponder()),
				adminAPI.WithPolicyResponder(adminAPI.NewPolicyAdminResponder()),
				adminAPI.WithWebhookResponder(adminAPI.NewWebhookAdminResponder()),
			)
		})
	}
	scepAuthority := s.auth.GetSCEP()
	if scepAuthority != nil {
		insecureMux.Route("/scep", func(r chi.Router) { scepAPI.Route(r) })
		mux.Route("/scep", func(r chi.Router) { scepAPI.Route(r) })
	}

	handler, insecure := http.Handler(mux), http.Handler(insecureMux)
	if len(cfg.Monitoring) > 0 {
		m, err := monitoring.New(cfg.Monitoring)
		if err != nil {
			return fmt.Errorf("ca.json monitoring: %w", err)
		}
		handler, insecure = m.Middleware(handler), m.Middleware(insecure)
	}
	var traceHeader string
	if len(cfg.Logger) > 0 {
		l, err := logging.New("ca", cfg.Logger)
		if err != nil {
			return fmt.Errorf("ca.json logger: %w", err)
		}
		traceHeader = l.GetTraceHeader()
		handler, insecure = l.Middleware(handler), l.Middleware(insecure)
	}
	s.handler = requestid.New(traceHeader).Middleware(handler)
	if cfg.InsecureAddress != "" && (scepAuthority != nil || cfg.CRL.IsEnabled()) {
		s.insecure = requestid.New(traceHeader).Middleware(insecure)
	}

	if client == nil {
		client = acme.NewClient()
	}
	ctx := authority.NewContext(context.Background(), s.auth)
	ctx = db.NewContext(ctx, s.auth.GetDatabase())
	if adminDB := s.auth.GetAdminDatabase(); adminDB != nil {
		ctx = admin.NewContext(ctx, adminDB)
	}
	if scepAuthority != nil {
		ctx = scep.NewContext(ctx, scepAuthority)
	}
	s.baseCtx = acme.NewContext(ctx, acmeDB, client, linker, nil)
	return nil
}

// Roots returns the CA's root certificates.
func (s *Server) Roots() []*x509.Certificate { return s.auth.GetRootCertificates() }

// Address is ca.json's address, where Run listens.
func (s *Server) Address() string { return s.cfg.Address }

// MetricsAddress is where Run serves metrics: the plugin's metricsAddress,
// else ca.json's, else "" (none).
func (s *Server) MetricsAddress() string {
	if s.plugin.MetricsAddress != "" {
		return s.plugin.MetricsAddress
	}
	return s.cfg.MetricsAddress
}

// MetricsHandler serves the server's Prometheus registry.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})
}

// maxRequestBody bounds every request body the CA reads. step-ca reads whole
// bodies before any check of ours; the largest legitimate one is a
// device-attest-01 answer: a 64 KiB attestation object, base64url in JSON,
// base64url again as a JWS payload (about 120 KiB).
const maxRequestBody = 256 << 10

// limitBody refuses a request whose declared body is over maxRequestBody
// with an ACME malformed problem (413), before step-ca reads any of it, and
// cuts off a body that turns out longer than it said.
func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxRequestBody {
			b, _ := json.Marshal(map[string]any{
				"type":   "urn:ietf:params:acme:error:malformed",
				"detail": fmt.Sprintf("the request body is %d bytes, over the limit of %d", r.ContentLength, maxRequestBody),
				"status": http.StatusRequestEntityTooLarge,
			})
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			w.Write(b)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		h.ServeHTTP(w, r)
	})
}

func (s *Server) httpServer(h http.Handler, tlsCfg *tls.Config) *http.Server {
	return &http.Server{
		Handler:           limitBody(h),
		TLSConfig:         tlsCfg,
		ReadTimeout:       15 * time.Second,
		ReadHeaderTimeout: 15 * time.Second,
		WriteTimeout:      s.write,
		IdleTimeout:       15 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// shutdownTimeout bounds a graceful shutdown.
const shutdownTimeout = 30 * time.Second

// Serve serves the CA over TLS on ln until ctx is done, then shuts down
// gracefully (in-flight requests finish). It does not Close the server.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serveAll(ctx, []listener{{ln: ln, srv: s.httpServer(s.handler, s.tls), tls: true, name: "CA"}})
}

// Run listens on ca.json's address (HTTPS), its insecureAddress when SCEP or
// the CRL needs plain HTTP, and the metrics address, serves until ctx is
// done, shuts down gracefully and closes the server.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer s.Close()
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ls []listener
	add := func(addr, name string, h http.Handler, useTLS bool) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range ls {
				l.ln.Close()
			}
			return fmt.Errorf("%s listener on %s: %w", name, addr, err)
		}
		var tlsCfg *tls.Config
		if useTLS {
			tlsCfg = s.tls
		}
		ls = append(ls, listener{ln: ln, srv: s.httpServer(h, tlsCfg), tls: useTLS, name: name})
		return nil
	}
	if err := add(s.cfg.Address, "CA", s.handler, true); err != nil {
		return err
	}
	if s.insecure != nil {
		if err := add(s.cfg.InsecureAddress, "insecure", s.insecure, false); err != nil {
			return err
		}
	}
	if a := s.MetricsAddress(); a != "" {
		if err := add(a, "metrics", s.MetricsHandler(), false); err != nil {
			return err
		}
	}
	for _, c := range s.Roots() {
		s.log.Info("root certificate", slog.String("fingerprint", x509util.Fingerprint(c)), slog.String("subject", c.Subject.CommonName))
	}
	if s.compact != nil {
		wg.Go(func() { s.compactLoop(ctx) })
	}
	return s.serveAll(ctx, ls)
}

type listener struct {
	ln   net.Listener
	srv  *http.Server
	tls  bool
	name string
}

func (s *Server) serveAll(ctx context.Context, ls []listener) error {
	errc := make(chan error, len(ls))
	for _, l := range ls {
		s.log.Info("serving", slog.String("what", l.name), slog.String("address", l.ln.Addr().String()), slog.Bool("tls", l.tls))
		go func() {
			var err error
			if l.tls {
				err = l.srv.ServeTLS(l.ln, "", "")
			} else {
				err = l.srv.Serve(l.ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			} else if err != nil {
				err = fmt.Errorf("%s server: %w", l.name, err)
			}
			errc <- err
		}()
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, l := range ls {
		if err := l.srv.Shutdown(sctx); err != nil && first == nil {
			first = fmt.Errorf("%s server shutdown: %w", l.name, err)
		}
	}
	return first
}

// compactLoop runs the database's value-log garbage collection (badger)
// every minute, as step-ca does.
func (s *Server) compactLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		for s.compact.Compact(0.7) == nil {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close stops the TLS renewal and shuts the authority down (its key manager
// and database). Serve must have returned first.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.renewer != nil {
			s.renewer.Stop()
		}
		s.closeErr = s.auth.Shutdown()
	})
	return s.closeErr
}
