package harness

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"time"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/verifier"
)

// Appraiser returns the real in-process verifier over the development
// policy in dir (a CA's Dir or Setup.Dir), signing its EARs with key, or
// with the policy's own key when key is nil. now is its clock (nil:
// time.Now).
func Appraiser(dir string, key *ecdsa.PrivateKey, now func() time.Time) (*verifier.Appraiser, error) {
	pol, err := verifier.LoadPolicy(filepath.Join(dir, "verifier-policy.yaml"))
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	if key == nil {
		if key, err = EARSigningKey(dir); err != nil {
			return nil, err
		}
	}
	signer, err := verifier.NewSigner(key, now)
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	a, err := verifier.NewAppraiser(verifier.AppraiserConfig{Policy: pol, Signer: signer, Now: now})
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	return a, nil
}

// EARSigningKey returns the development policy's EAR signing key in dir.
func EARSigningKey(dir string) (*ecdsa.PrivateKey, error) {
	key, _, err := verifier.LoadOrCreateSigningKey(earKeyPath(dir))
	if err != nil {
		return nil, fmt.Errorf("harness: EAR signing key: %w", err)
	}
	return key, nil
}

// VerifierService is attest-acme's verifier service (verifier.Service) on a
// loopback HTTP server.
type VerifierService struct {
	// URL is the service's base URL.
	URL string
	// Service is the API the server runs (before Wrap, if any).
	Service *verifier.Service

	srv *httptest.Server
}

// ServeVerifier starts verifier.Service over v on 127.0.0.1, announcing key
// as its EAR key. wrap, if not nil, wraps the service's handler (a test's
// man in the middle). Close stops it.
func ServeVerifier(v verifier.Verifier, mediaTypes []string, key *ecdsa.PublicKey, wrap func(http.Handler) http.Handler) (*VerifierService, error) {
	if v == nil || key == nil {
		return nil, errors.New("harness: ServeVerifier needs a verifier and its EAR key")
	}
	svc, err := verifier.NewService(verifier.ServiceConfig{Verifier: v, MediaTypes: mediaTypes, Key: key})
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	var h http.Handler = svc.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	return &VerifierService{URL: ts.URL, Service: svc, srv: ts}, nil
}

// ServeDevVerifier is ServeVerifier with the real appraiser over the
// development policy in dir and the policy's EAR key.
func ServeDevVerifier(dir string, wrap func(http.Handler) http.Handler) (*VerifierService, error) {
	a, err := Appraiser(dir, nil, nil)
	if err != nil {
		return nil, err
	}
	return ServeVerifier(a, a.MediaTypes(), a.VerificationKey().(*ecdsa.PublicKey), wrap)
}

// Close stops the server.
func (s *VerifierService) Close() { s.srv.Close() }

// UseRemoteVerifier points the plugin's configuration at a remote verifier
// of type typ (caplugin.VerifierService or caplugin.VerifierVeraison) at
// url, with earKeyPath pinned as its EAR key and the given timeout (0: the
// plugin's default).
func UseRemoteVerifier(s *Setup, typ, url, earKeyPath string, timeout time.Duration) {
	s.Plugin.Verifier = caplugin.VerifierConfig{Type: typ, URL: url, EARKey: earKeyPath,
		Timeout: caplugin.Duration{Duration: timeout}}
	if timeout == 0 {
		s.Plugin.Verifier.Timeout.Duration = caplugin.DefaultVerifierTimeout
	}
}
