package rig

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	xacme "golang.org/x/crypto/acme"

	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/evidence"
)

// Step is one step of an issuance, as the clients see it.
type Step int

// The steps of one issuance, in order.
const (
	// StepKey generates the certificate's key pair (P-256).
	StepKey Step = iota
	// StepOrder is newOrder (one signed POST).
	StepOrder
	// StepAuthz reads the order's authorization (POST-as-GET).
	StepAuthz
	// StepAnswer is the client's own work for the challenge: evidence
	// (kc, platform evidence, bundle, payload) for device-attest-01, the
	// key authorization put in the responder for http-01.
	StepAnswer
	// StepChallenge is the challenge POST; step-ca validates before it
	// answers (appraisal for device-attest-01, its GET for http-01).
	StepChallenge
	// StepPoll reads the order until it is ready (POST-as-GET).
	StepPoll
	// StepFinalize is the CSR, the finalize POST and the certificate
	// download (POST-as-GET).
	StepFinalize
	// NumSteps counts the steps.
	NumSteps
)

var stepNames = [NumSteps]string{"key", "newOrder", "authz", "answer", "challenge", "poll", "finalize+download"}

// String names the step as the reports do.
func (s Step) String() string {
	if s < 0 || s >= NumSteps {
		return fmt.Sprintf("step(%d)", int(s))
	}
	return stepNames[s]
}

// Client is one ACME client: an account (P-256 key) registered once and
// reused for every issuance, like a real client, over its own keep-alive
// connection. A Client is used by one goroutine at a time.
type Client struct {
	// ACME is the x/crypto/acme client.
	ACME *xacme.Client
	// Requests counts the HTTP requests sent to the CA.
	Requests atomic.Int64
	// BadNonces counts badNonce answers x/crypto/acme retried.
	BadNonces atomic.Int64
}

// NewClient registers a new account at the CA's directory.
func NewClient(ctx context.Context, directoryURL string, roots *x509.CertPool) (*Client, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &Client{}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     time.Minute,
	}
	c.ACME = &xacme.Client{
		Key:          key,
		DirectoryURL: directoryURL,
		HTTPClient:   &http.Client{Transport: countingTransport{tr, &c.Requests}},
		UserAgent:    "attest-acme-rig",
		// Retry a bad nonce only (x/crypto/acme clears its nonces first),
		// never a server error: a 5xx is an error of the run, or, in the
		// fault tests, an answer to look at.
		RetryBackoff: func(n int, _ *http.Request, res *http.Response) time.Duration {
			if n > 5 || res == nil || res.StatusCode != http.StatusBadRequest {
				return -1
			}
			c.BadNonces.Add(1)
			return time.Millisecond
		},
	}
	if _, err := c.ACME.Register(ctx, &xacme.Account{}, xacme.AcceptTOS); err != nil {
		return nil, fmt.Errorf("rig: registering an account: %w", err)
	}
	return c, nil
}

type countingTransport struct {
	http.RoundTripper
	n *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.RoundTripper.RoundTrip(r)
}

// Close drops the client's idle connections.
func (c *Client) Close() {
	if t, ok := c.ACME.HTTPClient.Transport.(countingTransport); ok {
		t.RoundTripper.(*http.Transport).CloseIdleConnections()
	}
}

// Request says what to issue.
type Request struct {
	// Attester, if set, answers a device-attest-01 challenge for the
	// permanent-identifier Identifier with its evidence (format cmw); nil
	// means a plain http-01 issuance for the IP address Identifier (RFC
	// 8738), answered by HTTP01.
	Attester   evidence.Attester
	Identifier string
	HTTP01     *Responder
	// Retry, if set, is asked whether to try a failed step again; nil
	// means a failed step fails the issuance.
	Retry func(*Failure) bool
	// RetryWait is the pause before a retry; default 100ms.
	RetryWait time.Duration
	// Now is the clock of the kc's iat; nil means time.Now.
	Now func() time.Time
}

// Failure is a failed step, for Request.Retry.
type Failure struct {
	Step    Step
	Attempt int // 1 for the first try
	Err     error
	Client  *Client
	// Order is the order, once newOrder succeeded; AuthzURL its
	// authorization, once read.
	Order    *xacme.Order
	AuthzURL string
	// Key is the certificate's key (the attested key).
	Key *ecdsa.PrivateKey
}

// Issued is a certificate obtained, with what it took.
type Issued struct {
	// Chain is the certificate chain, leaf first.
	Chain []*x509.Certificate
	// Key is the certificate's private key.
	Key *ecdsa.PrivateKey
	// Answer is the device-attest-01 answer sent (nil for http-01).
	Answer     *challenge.Answer
	Identifier string
	OrderURL   string
	// Steps are the time each step took, retries included; Total is the
	// whole issuance.
	Steps [NumSteps]time.Duration
	Total time.Duration
	// Retries counts the steps tried again.
	Retries int
}

// ChallengeError is a challenge answered with a status other than valid.
type ChallengeError struct {
	Status  string
	Problem error
}

// Error says what the challenge ended as.
func (e *ChallengeError) Error() string {
	return fmt.Sprintf("challenge is %s after the answer: %v", e.Status, e.Problem)
}

// Issue runs one issuance: key, newOrder, authorization, answer, challenge,
// poll, finalize and download. Each step is timed; a failed step is retried
// while r.Retry says so.
func (c *Client) Issue(ctx context.Context, r Request) (*Issued, error) {
	if r.Attester == nil && r.HTTP01 == nil {
		return nil, errors.New("rig: a request needs an Attester or an http-01 Responder")
	}
	if r.RetryWait == 0 {
		r.RetryWait = 100 * time.Millisecond
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	out := &Issued{Identifier: r.Identifier}
	f := &Failure{Client: c}
	start := time.Now()
	step := func(s Step, fn func() error) error {
		t0 := time.Now()
		defer func() { out.Steps[s] += time.Since(t0) }()
		for attempt := 1; ; attempt++ {
			err := fn()
			if err == nil {
				return nil
			}
			f.Step, f.Attempt, f.Err = s, attempt, err
			if r.Retry == nil || ctx.Err() != nil || !r.Retry(f) {
				return fmt.Errorf("%s: %w", s, err)
			}
			out.Retries++
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %w (last error: %v)", s, ctx.Err(), err)
			case <-time.After(r.RetryWait):
			}
		}
	}

	if err := step(StepKey, func() (err error) {
		out.Key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return err
	}); err != nil {
		return nil, err
	}
	f.Key = out.Key
	ids := []xacme.AuthzID{{Type: "ip", Value: r.Identifier}}
	chType := "http-01"
	if r.Attester != nil {
		ids = []xacme.AuthzID{{Type: "permanent-identifier", Value: r.Identifier}}
		chType = "device-attest-01"
	}
	var order *xacme.Order
	if err := step(StepOrder, func() (err error) {
		order, err = c.ACME.AuthorizeOrder(ctx, ids)
		if err == nil && len(order.AuthzURLs) != 1 {
			return fmt.Errorf("order %s has %d authorizations, want 1", order.URI, len(order.AuthzURLs))
		}
		return err
	}); err != nil {
		return nil, err
	}
	f.Order, out.OrderURL = order, order.URI
	var chal *xacme.Challenge
	if err := step(StepAuthz, func() error {
		az, err := c.ACME.GetAuthorization(ctx, order.AuthzURLs[0])
		if err != nil {
			return err
		}
		f.AuthzURL = az.URI
		for _, ch := range az.Challenges {
			if ch.Type == chType {
				chal = ch
			}
		}
		if chal == nil {
			return fmt.Errorf("authorization %s offers no %s challenge", az.URI, chType)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := step(StepAnswer, func() error {
		keyAuth, err := c.ACME.HTTP01ChallengeResponse(chal.Token) // token "." thumbprint, whatever the type
		if err != nil {
			return err
		}
		if r.Attester == nil {
			r.HTTP01.Set(chal.Token, keyAuth)
			return nil
		}
		out.Answer, err = challenge.NewAnswer(ctx, r.Attester, keyAuth, out.Key.Public(), now())
		if err != nil {
			return err
		}
		chal.Payload = out.Answer.Payload
		return nil
	}); err != nil {
		return nil, err
	}
	if r.Attester == nil {
		defer r.HTTP01.Delete(chal.Token)
	}
	if err := step(StepChallenge, func() error {
		ch, err := c.ACME.Accept(ctx, chal)
		if err != nil {
			return err
		}
		if ch.Status != xacme.StatusValid {
			return &ChallengeError{Status: ch.Status, Problem: ch.Error}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := step(StepPoll, func() error {
		o, err := c.ACME.WaitOrder(ctx, order.URI)
		if err == nil && o.Status != xacme.StatusReady && o.Status != xacme.StatusValid {
			err = fmt.Errorf("order %s is %s", o.URI, o.Status)
		}
		return err
	}); err != nil {
		return nil, err
	}
	if err := step(StepFinalize, func() error {
		tmpl := &x509.CertificateRequest{}
		if r.Attester == nil {
			tmpl.IPAddresses = []net.IP{net.ParseIP(r.Identifier)}
		}
		csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, out.Key)
		if err != nil {
			return err
		}
		der, _, err := c.ACME.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
		if err != nil {
			return err
		}
		out.Chain = out.Chain[:0]
		for _, d := range der {
			crt, err := x509.ParseCertificate(d)
			if err != nil {
				return fmt.Errorf("certificate from the CA: %w", err)
			}
			out.Chain = append(out.Chain, crt)
		}
		if len(out.Chain) == 0 {
			return errors.New("the CA sent no certificate")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	out.Total = time.Since(start)
	return out, nil
}

// Problem returns err's ACME problem, if it carries one.
func Problem(err error) (*xacme.Error, bool) {
	var ae *xacme.Error
	ok := errors.As(err, &ae)
	return ae, ok
}
