package acmeclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-acme/lego/v4/acme"
	jose "github.com/go-jose/go-jose/v4"
)

// poster makes the one kind of request lego does not export: a POST signed
// with the account key (RFC 8555 §6.2), protected header {alg, kid = account
// URL, nonce, url}. It is used for newOrder with a permanent-identifier
// (§7.4), the device-attest-01 answer (§7.5.1), and POST-as-GET polling
// (§6.3), whose Retry-After lego's getters do not return. The nonce comes
// from newNonce (§7.2) or from the previous answer's Replay-Nonce; a badNonce
// problem is retried once with a fresh nonce (§6.5). The JWS itself is
// go-jose's, as in lego.
type poster struct {
	hc       *http.Client
	ua       string
	key      crypto.Signer
	kid      string
	nonceURL string
	nonce    string // from the last answer; used at most once
}

// signedAnswer is what the CA answered a signed POST with.
type signedAnswer struct {
	status int
	header http.Header
	body   []byte
}

// jwsAlgorithm is the JWS algorithm for an account key (RFC 7518 §3.1).
func jwsAlgorithm(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		}
	case *rsa.PublicKey:
		return jose.RS256, nil
	case ed25519.PublicKey:
		return jose.EdDSA, nil
	}
	return "", fmt.Errorf("account key of type %T cannot sign ACME requests", key.Public())
}

// post signs payload for url and POSTs it; a nil payload is a POST-as-GET.
// An answer with an HTTP error status comes back as a *ProblemError (op
// names the step) when it is a problem document.
func (p *poster) post(ctx context.Context, op, url string, payload []byte) (*signedAnswer, error) {
	for attempt := 0; ; attempt++ {
		ans, prob, err := p.postOnce(ctx, url, payload)
		if err != nil {
			return nil, wrap(op, err)
		}
		if prob == nil {
			return ans, nil
		}
		if prob.Type == acme.BadNonceErr && attempt == 0 {
			continue // postOnce kept the problem's Replay-Nonce, or fetches one
		}
		return nil, problemFrom(op, prob)
	}
}

// postOnce makes one signed POST; a problem document answer comes back as
// prob.
func (p *poster) postOnce(ctx context.Context, url string, payload []byte) (*signedAnswer, *acme.ProblemDetails, error) {
	nonce := p.nonce
	p.nonce = ""
	if nonce == "" {
		var err error
		if nonce, err = p.newNonce(ctx); err != nil {
			return nil, nil, err
		}
	}
	alg, err := jwsAlgorithm(p.key)
	if err != nil {
		return nil, nil, err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: p.key, KeyID: p.kid}},
		(&jose.SignerOptions{}).WithHeader("nonce", nonce).WithHeader("url", url),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("JWS signer: %w", err)
	}
	if payload == nil {
		payload = []byte{}
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(jws.FullSerialize()))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/jose+json")
	req.Header.Set("User-Agent", p.ua)
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the answer from %s: %w", url, err)
	}
	if n := resp.Header.Get("Replay-Nonce"); validNonce(n) {
		p.nonce = n
	}
	if resp.StatusCode < 400 {
		return &signedAnswer{status: resp.StatusCode, header: resp.Header, body: body}, nil, nil
	}
	var prob acme.ProblemDetails
	if err := json.Unmarshal(body, &prob); err != nil || prob.Type == "" && prob.Detail == "" {
		return nil, nil, fmt.Errorf("HTTP %d from %s, not a problem document: %q", resp.StatusCode, url, truncate(body, 200))
	}
	if prob.HTTPStatus == 0 {
		prob.HTTPStatus = resp.StatusCode
	}
	return nil, &prob, nil
}

// newNonce asks the CA for a fresh nonce (RFC 8555 §7.2).
func (p *poster) newNonce(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, p.nonceURL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", p.ua)
	resp, err := p.hc.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return "", fmt.Errorf("newNonce %s: HTTP %d", p.nonceURL, resp.StatusCode)
	}
	n := resp.Header.Get("Replay-Nonce")
	if !validNonce(n) {
		return "", fmt.Errorf("newNonce %s: Replay-Nonce %q is not base64url", p.nonceURL, truncate([]byte(n), 80))
	}
	return n, nil
}

// validNonce checks a Replay-Nonce value: non-empty base64url (RFC 8555
// §6.5.1), and not absurdly long.
func validNonce(n string) bool {
	if n == "" || len(n) > 512 {
		return false
	}
	for _, c := range []byte(n) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// decodeJSON parses an ACME object strictly enough: one JSON value, nothing after.
func decodeJSON(what string, b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d.More() {
		return fmt.Errorf("%s: data after the JSON object", what)
	}
	return nil
}

// truncate shortens b for an error message.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}

// errNoLocation is a 201 answer to newOrder without the order's URL.
var errNoLocation = errors.New("the CA created the order but sent no Location")

// thumbprint is the base64url SHA-256 JWK thumbprint of the account key
// (RFC 7638), the second half of a key authorization (RFC 8555 §8.1).
func thumbprint(pub crypto.PublicKey) (string, error) {
	t, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("account key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}
