package verifier

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/veraison/apiclient/common"
	"github.com/veraison/apiclient/verification"
)

// Client is the Verifier for a remote verification service that speaks
// Veraison's challenge-response API: our own service, or a Veraison
// deployment. It uses github.com/veraison/apiclient.
type Client struct {
	newSessionURI string
	transport     http.RoundTripper
	timeout       time.Duration
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the service's base URL, e.g. https://verifier:8443.
	URL string
	// TLS configures the connection (roots to trust); nil uses the system's.
	TLS *tls.Config
	// Timeout bounds one whole appraisal (session, evidence, result); default 10s.
	Timeout time.Duration
}

// NewClient returns a Client for the service at cfg.URL.
func NewClient(cfg ClientConfig) (*Client, error) {
	base := strings.TrimRight(cfg.URL, "/")
	if !strings.HasPrefix(base, "https://") && !strings.HasPrefix(base, "http://") {
		return nil, fmt.Errorf("verifier URL %q: want http:// or https://", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg.TLS
	tr.MaxIdleConnsPerHost = 64
	return &Client{newSessionURI: base + PathNewSession, transport: tr, timeout: cfg.Timeout}, nil
}

// ctxTransport attaches a context to requests that apiclient builds without one.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.WithContext(t.ctx)
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, PathNewSession) {
		// A new session is safe to ask for twice (an unused one expires), so
		// mark it replayable: net/http then retries it on a fresh connection
		// when a kept-alive one turns out dead, as after a verifier restart,
		// instead of failing the challenge.
		r.Header = r.Header.Clone()
		r.Header.Set("Idempotency-Key", newSessionID())
	}
	return t.base.RoundTrip(r)
}

// Appraise runs one challenge-response exchange: a session with nonce, the
// evidence posted with its media type, and the EAR from the completed session.
// Every failure of the exchange is an error the CA treats as retryable; the
// EAR's own status says whether the evidence was good.
func (c *Client) Appraise(ctx context.Context, ev evidence.Evidence, nonce []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	hc := common.NewClientWithTransport(nil, ctxTransport{ctx: ctx, base: c.transport})
	hc.HTTPClient.Timeout = c.timeout
	cfg := verification.ChallengeResponseConfig{
		Nonce:         nonce,
		NewSessionURI: c.newSessionURI,
		Client:        hc,
		DeleteSession: false,
		UseTLS:        strings.HasPrefix(c.newSessionURI, "https://"),
	}
	sess, uri, err := cfg.NewSession()
	if err != nil {
		return nil, fmt.Errorf("verifier %s: %w", c.newSessionURI, err)
	}
	if string(sess.Nonce) != string(nonce) {
		return nil, errors.New("verifier: the session's nonce is not the one asked for")
	}
	res, err := cfg.ChallengeResponse(ev.Data, ev.MediaType, uri)
	// The finished session is not DELETEd: that would be a third round trip
	// per appraisal, and both our service (which keeps a bounded number of
	// finished sessions) and Veraison expire them.
	if err != nil {
		return nil, fmt.Errorf("verifier %s: %w", uri, err)
	}
	var tok string
	if err := json.Unmarshal(res, &tok); err != nil {
		return nil, fmt.Errorf("verifier: the session's result is not a JWT string: %w", err)
	}
	if tok == "" || len(tok) > MaxEARSize {
		return nil, fmt.Errorf("verifier: the session's result is empty or over %d bytes", MaxEARSize)
	}
	return []byte(tok), nil
}
