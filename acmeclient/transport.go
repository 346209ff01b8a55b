package acmeclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// MaxResponseBody bounds every response body the client reads from the CA:
// directory, account, order, authorization, challenge, problem and
// certificate chain alike.
const MaxResponseBody = 1 << 20

// DefaultHTTPTimeout bounds one HTTP exchange with the CA.
const DefaultHTTPTimeout = 30 * time.Second

// NewHTTPClient returns an HTTP client for talking to the CA: TLS 1.2 or
// later, server certificates checked against roots (nil: the system's
// roots), each exchange bounded by timeout (zero: DefaultHTTPTimeout).
func NewHTTPClient(roots *x509.CertPool, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultHTTPTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{Transport: tr, Timeout: timeout}
}

// ConnError is a failure to talk to the CA at all: the connection failed,
// or the CA's TLS certificate is not trusted.
type ConnError struct {
	// URL is the address that was asked for.
	URL string
	// Untrusted says the TLS handshake failed on the CA's certificate
	// (unknown authority, wrong name, expired).
	Untrusted bool
	// Err is the cause.
	Err error
}

// Error names the URL and the cause.
func (e *ConnError) Error() string {
	if e.Untrusted {
		return fmt.Sprintf("the CA at %s presented a TLS certificate that is not trusted: %v", e.URL, e.Err)
	}
	return fmt.Sprintf("cannot reach the CA at %s: %v", e.URL, e.Err)
}

// Unwrap returns the cause.
func (e *ConnError) Unwrap() error { return e.Err }

// boundTransport runs every request of one operation under that operation's
// context (lego's calls take none), turns connection failures into
// *ConnError, and bounds response bodies to MaxResponseBody.
type boundTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

// httpClientFor returns a client like base whose requests are bound to ctx.
func httpClientFor(ctx context.Context, base *http.Client) *http.Client {
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c := *base
	c.Transport = &boundTransport{ctx: ctx, base: rt}
	return &c
}

// RoundTrip implements http.RoundTripper.
func (t *boundTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Context() == context.Background() {
		req = req.WithContext(t.ctx)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		if t.ctx.Err() != nil {
			return nil, err // cancelled: not the CA's fault
		}
		return nil, &ConnError{URL: req.URL.String(), Untrusted: isTLSTrustError(err), Err: err}
	}
	resp.Body = &limitedBody{rc: resp.Body, left: MaxResponseBody, url: req.URL.String()}
	return resp, nil
}

// isTLSTrustError reports whether err is the CA's certificate failing
// verification.
func isTLSTrustError(err error) bool {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		cve *tls.CertificateVerificationError
	)
	return errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &cve)
}

// limitedBody fails a read that goes past the limit, rather than truncating
// silently.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	url  string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Is there more? One byte tells.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("the answer from %s is over the limit of %d bytes", b.url, MaxResponseBody)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
