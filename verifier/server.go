package verifier

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is a running verifier service: the Appraiser behind the
// challenge-response API, with metrics.
type Server struct {
	// Appraiser is the in-process verifier the service runs.
	Appraiser *Appraiser
	// Service is the HTTP API.
	Service *Service
	policy  *Policy
	reg     *prometheus.Registry
	log     *slog.Logger
}

// NewServer builds the service of a policy: the EAR key is loaded or created,
// the appraisers built, metrics registered.
func NewServer(p *Policy, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key, created, err := LoadOrCreateSigningKey(p.Path(p.EAR.SigningKey))
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created the EAR signing key", "path", p.Path(p.EAR.SigningKey))
	}
	signer, err := NewSigner(key, time.Now)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	app, err := NewAppraiser(AppraiserConfig{Policy: p, Signer: signer, Log: log, Metrics: m})
	if err != nil {
		return nil, err
	}
	svc, err := NewService(ServiceConfig{
		Verifier: app, MediaTypes: app.MediaTypes(), Key: signer.Public(),
		Lifetime: p.Session.Lifetime.Duration, MaxSessions: p.Session.Max, Log: log,
	})
	if err != nil {
		return nil, err
	}
	return &Server{Appraiser: app, Service: svc, policy: p, reg: reg, log: log}, nil
}

// Serve listens as the policy's server section says until ctx ends, then
// shuts down gracefully (open requests get up to 10 seconds). ready, if not
// nil, receives the API's address once it listens.
func (s *Server) Serve(ctx context.Context, ready chan<- net.Addr) error {
	cfg := s.policy.Server
	mux := http.NewServeMux()
	mux.Handle("/", s.Service.Handler())
	metrics := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
	if cfg.MetricsListen == "" {
		mux.Handle("GET "+PathMetrics, metrics)
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	if !cfg.PlainHTTP {
		tc, err := LoadOrCreateTLS(s.policy.Path(cfg.TLSCert), s.policy.Path(cfg.TLSKey), cfg.TLSHosts)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, tc)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	servers := []*http.Server{srv}
	errs := make(chan error, 2)
	go func() { errs <- srv.Serve(ln) }()
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			srv.Close()
			return fmt.Errorf("verifier metrics: %w", err)
		}
		mm := http.NewServeMux()
		mm.Handle("GET "+PathMetrics, metrics)
		ms := &http.Server{Handler: mm, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, ms)
		go func() { errs <- ms.Serve(mln) }()
	}
	s.log.Info("verifier listening", "addr", ln.Addr().String(), "tls", !cfg.PlainHTTP, "media_types", s.Appraiser.MediaTypes())
	if ready != nil {
		ready <- ln.Addr()
	}
	select {
	case err := <-errs:
		for _, x := range servers {
			x.Close()
		}
		return fmt.Errorf("verifier: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, x := range servers {
		if err := x.Shutdown(sctx); err != nil {
			return fmt.Errorf("verifier: shutdown: %w", err)
		}
	}
	s.log.Info("verifier stopped")
	return nil
}

// LoadOrCreateTLS loads a certificate and key, or, when neither file exists,
// makes a self-signed P-256 certificate for hosts, valid for a year, and saves
// both (key 0600). Clients then pin the certificate file.
func LoadOrCreateTLS(certPath, keyPath string, hosts []string) (*tls.Config, error) {
	_, errC := os.Stat(certPath)
	_, errK := os.Stat(keyPath)
	if errors.Is(errC, fs.ErrNotExist) && errors.Is(errK, fs.ErrNotExist) {
		if err := createSelfSigned(certPath, keyPath, hosts); err != nil {
			return nil, fmt.Errorf("verifier TLS: %w", err)
		}
	}
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("verifier TLS: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, nil
}

func createSelfSigned(certPath, keyPath string, hosts []string) error {
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "attest-acme verifier"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
