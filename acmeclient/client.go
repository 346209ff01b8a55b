package acmeclient

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/challenge/http01"

	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/evidence"
)

// ChallengeType is the challenge this client answers with attestation
// (draft-ietf-acme-device-attest).
const ChallengeType = "device-attest-01"

// Config is what a Client needs.
type Config struct {
	// DirectoryURL is the CA's ACME directory (https).
	DirectoryURL string
	// Storage is where the account and the certificates are kept.
	Storage *Storage
	// Attester produces the platform evidence for each challenge.
	Attester evidence.Attester
	// OpenAttester, used when Attester is nil, opens the attester at the
	// start of each issuance, and close releases it at the end: a renewal
	// that is not due, or a daemon between renewals, holds no TPM or
	// configfs-tsm open. Its error is returned as is.
	OpenAttester func(ctx context.Context) (a evidence.Attester, close func(), err error)
	// HTTPClient talks to the CA; nil means NewHTTPClient(nil, 0) (system
	// roots). Its transport is wrapped, never changed.
	HTTPClient *http.Client
	// UserAgent is prepended to lego's User-Agent; empty means "attest-acme".
	UserAgent string
	// Email is the account's contact, and names its directory (lego's
	// layout); empty is allowed.
	Email string
	// EAB binds a new account to an external account, when the CA wants one.
	EAB *EAB
	// AcceptTOS agrees to the CA's terms of service when registering.
	AcceptTOS bool
	// HTTP01Address is where lego's http-01 solver listens for dns
	// identifiers (host:port; empty means ":80").
	HTTP01Address string
	// PollTimeout bounds the wait for each authorization and for the order;
	// zero means DefaultPollTimeout.
	PollTimeout time.Duration
	// Progress receives an event after each step; nil discards them.
	Progress func(Event)
	// Now is the clock for the kc's iat and for renewal decisions; nil means
	// time.Now.
	Now func() time.Time
}

// Client gets certificates from one CA with one account. It keeps no state
// between calls but what Storage holds; calls may not run concurrently for
// the same identifier.
type Client struct {
	cfg    Config
	store  *Storage
	dirURL *url.URL
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	u, err := httpsURL(cfg.DirectoryURL)
	if err != nil {
		return nil, fmt.Errorf("ACME directory: %w", err)
	}
	if cfg.Storage == nil {
		return nil, errors.New("acmeclient: Config.Storage is required")
	}
	if cfg.Attester == nil && cfg.OpenAttester == nil {
		return nil, errors.New("acmeclient: Config.Attester or Config.OpenAttester is required")
	}
	if strings.ContainsAny(cfg.Email, "/\\") || strings.HasPrefix(cfg.Email, ".") || strings.ContainsFunc(cfg.Email, unicode.IsSpace) {
		return nil, fmt.Errorf("email %q: not an address", cfg.Email)
	}
	if cfg.EAB != nil && (cfg.EAB.KeyID == "" || cfg.EAB.HMACKey == "") {
		return nil, errors.New("external account binding: both the key ID and the HMAC key are needed")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient(nil, 0)
	}
	if cfg.HTTP01Address == "" {
		cfg.HTTP01Address = ":80"
	}
	if _, _, err := net.SplitHostPort(cfg.HTTP01Address); err != nil {
		return nil, fmt.Errorf("http-01 address %q: %w", cfg.HTTP01Address, err)
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = DefaultPollTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, store: cfg.Storage, dirURL: u}, nil
}

// Storage is the client's storage.
func (c *Client) Storage() *Storage { return c.store }

func (c *Client) userAgent() string {
	if c.cfg.UserAgent != "" {
		return c.cfg.UserAgent
	}
	return "attest-acme"
}

func (c *Client) emit(e Event) {
	if c.cfg.Progress == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = c.cfg.Now()
	}
	c.cfg.Progress(e)
}

// Request says what certificate to get.
type Request struct {
	// Identifier is the permanent identifier (draft-ietf-acme-device-attest):
	// no "/" (an assigner OID is not supported), no spaces or control
	// characters.
	Identifier string
	// DNSNames are dns identifiers to add to the same order, validated with
	// http-01.
	DNSNames []string
	// KeyType is the type of a new certificate key; empty means EC256.
	KeyType KeyType
	// Key, if set, is used instead of a new key (renewal with --reuse-key).
	Key crypto.Signer
}

// maxIdentifier bounds a permanent identifier.
const maxIdentifier = 255

// check validates r and fills defaults.
func (r *Request) check() error {
	id := r.Identifier
	switch {
	case id == "":
		return errors.New("the permanent identifier is empty")
	case len(id) > maxIdentifier:
		return fmt.Errorf("the permanent identifier is %d bytes, over the limit of %d", len(id), maxIdentifier)
	case strings.Contains(id, "/"):
		return fmt.Errorf("permanent identifier %q: \"/\" introduces an assigner OID, which this client does not support", id)
	case strings.ContainsFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Errorf("permanent identifier %q has white space or control characters", id)
	}
	seen := map[string]bool{}
	var names []string
	for _, n := range r.DNSNames {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		switch {
		case n == "" || len(n) > 253:
			return fmt.Errorf("DNS name %q: empty or too long", n)
		case strings.HasPrefix(n, "*."):
			return fmt.Errorf("DNS name %q: a wildcard needs dns-01, and this client validates DNS names with http-01 only", n)
		case strings.ContainsFunc(n, func(r rune) bool {
			return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '.')
		}):
			return fmt.Errorf("DNS name %q: only letters, digits, '-' and '.' (give IDNs in their xn-- form)", n)
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	r.DNSNames = names
	if r.Key != nil {
		kt, err := KeyTypeOf(r.Key.Public())
		if err != nil {
			return fmt.Errorf("certificate key: %w", err)
		}
		r.KeyType = kt
	} else if r.KeyType == "" {
		r.KeyType = EC256
	} else if _, err := ParseKeyType(string(r.KeyType)); err != nil {
		return err
	}
	return nil
}

// Obtain gets a certificate for r and stores it: certificate key (new
// unless r.Key is set), account (registered or reused), order,
// device-attest-01 answered with fresh evidence (and http-01 for dns
// identifiers), finalize, and the set written to storage atomically. On
// error nothing under the certificates directory has changed; a newly
// registered account is kept, as the CA knows it.
func (c *Client) Obtain(ctx context.Context, r Request) (*Saved, error) {
	cert, err := c.obtain(ctx, r)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	sv, err := c.store.Save(cert)
	if err != nil {
		c.emit(Event{Stage: StageStore, Duration: time.Since(start), Err: err, Message: "storing the certificate failed"})
		return nil, err
	}
	c.emit(Event{Stage: StageStore, Duration: time.Since(start),
		Message: "certificate, key, EAR and resource written to " + sv.Paths.Dir,
		Fields: map[string]string{"cert": sv.Paths.Cert, "key": sv.Paths.Key, "ear": sv.Paths.EAR,
			"resource": sv.Paths.Resource, "version": sv.Version}})
	return sv, nil
}

// flow is one issuance in progress.
type flow struct {
	c          *Client
	ctx        context.Context
	hc         *http.Client
	core       *api.Core
	post       *poster
	accountURL string
	thumbprint string
	key        crypto.Signer
	req        Request
	attester   evidence.Attester
	// set by the challenge
	answer *challenge.Answer
}

// obtain runs the ACME exchange and returns the certificate, not yet stored.
func (c *Client) obtain(ctx context.Context, r Request) (*Certificate, error) {
	if err := r.check(); err != nil {
		return nil, &RequestError{Err: err}
	}
	f := &flow{c: c, ctx: ctx, hc: httpClientFor(ctx, c.cfg.HTTPClient), req: r, key: r.Key, attester: c.cfg.Attester}
	if f.attester == nil {
		a, closeAttester, err := c.cfg.OpenAttester(ctx)
		if err != nil {
			return nil, err
		}
		defer closeAttester()
		f.attester = a
	}
	if f.key == nil {
		var err error
		if f.key, err = GenerateKey(r.KeyType); err != nil {
			return nil, fmt.Errorf("certificate key: %w", err)
		}
	}
	if err := f.account(); err != nil {
		return nil, err
	}
	orderURL, order, err := f.newOrder()
	if err != nil {
		return nil, err
	}
	for _, az := range order.Authorizations {
		if err := f.authorize(az); err != nil {
			return nil, err
		}
	}
	if f.answer == nil {
		return nil, fmt.Errorf("order %s: no device-attest-01 challenge was answered", orderURL)
	}
	return f.finalize(orderURL)
}

// newOrder creates the order (RFC 8555 §7.4) with the permanent-identifier
// and the dns identifiers.
func (f *flow) newOrder() (string, *acme.Order, error) {
	start := time.Now()
	want := []Identifier{{Type: TypePermanentIdentifier, Value: f.req.Identifier}}
	for _, n := range f.req.DNSNames {
		want = append(want, Identifier{Type: TypeDNS, Value: n})
	}
	body, err := json.Marshal(struct {
		Identifiers []Identifier `json:"identifiers"`
	}{want})
	if err != nil {
		return "", nil, err
	}
	dir := f.core.GetDirectory()
	ans, err := f.post.post(f.ctx, "newOrder", dir.NewOrderURL, body)
	if err != nil {
		return "", nil, err
	}
	var o acme.Order
	if err := decodeJSON("newOrder", ans.body, &o); err != nil {
		return "", nil, err
	}
	loc := ans.header.Get("Location")
	if ans.status != http.StatusCreated || loc == "" {
		return "", nil, fmt.Errorf("newOrder: HTTP %d: %w", ans.status, errNoLocation)
	}
	if _, err := httpsURL(loc); err != nil {
		return "", nil, fmt.Errorf("newOrder: order URL: %w", err)
	}
	if err := sameIdentifiers(want, o.Identifiers); err != nil {
		return "", nil, fmt.Errorf("newOrder: %w", err)
	}
	if len(o.Authorizations) == 0 || len(o.Authorizations) > len(want) {
		return "", nil, fmt.Errorf("newOrder: %d authorizations for %d identifiers", len(o.Authorizations), len(want))
	}
	for _, u := range append(slices.Clone(o.Authorizations), o.Finalize) {
		if _, err := httpsURL(u); err != nil {
			return "", nil, fmt.Errorf("newOrder: %w", err)
		}
	}
	if o.Status != acme.StatusPending && o.Status != acme.StatusReady {
		return "", nil, fmt.Errorf("newOrder: the new order %s is %q", loc, o.Status)
	}
	f.c.emit(Event{Stage: StageOrder, Duration: time.Since(start),
		Message: fmt.Sprintf("order %s for %d identifier(s)", loc, len(want)),
		Fields:  map[string]string{"order": loc}})
	return loc, &o, nil
}

// sameIdentifiers checks that the CA kept the identifiers asked for
// (RFC 8555 §7.4: the server must not change them).
func sameIdentifiers(want []Identifier, got []acme.Identifier) error {
	key := func(t, v string) string { return t + "\x00" + strings.ToLower(v) }
	w := map[string]bool{}
	for _, i := range want {
		w[key(i.Type, i.Value)] = true
	}
	g := map[string]bool{}
	for _, i := range got {
		g[key(i.Type, i.Value)] = true
	}
	if len(w) != len(g) || len(got) != len(want) {
		return fmt.Errorf("the CA changed the identifiers: asked %v, got %v", want, got)
	}
	for k := range w {
		if !g[k] {
			return fmt.Errorf("the CA changed the identifiers: asked %v, got %v", want, got)
		}
	}
	return nil
}

// authorize fetches one authorization and satisfies it: device-attest-01 for
// the permanent-identifier, http-01 for a dns name.
func (f *flow) authorize(azURL string) error {
	var az acme.Authorization
	ans, err := f.post.post(f.ctx, "authorization", azURL, nil)
	if err != nil {
		return err
	}
	if err := decodeJSON("authorization "+azURL, ans.body, &az); err != nil {
		return err
	}
	id := Identifier{Type: az.Identifier.Type, Value: az.Identifier.Value}
	switch az.Status {
	case acme.StatusValid:
		if id.Type == TypePermanentIdentifier {
			// Never reused by the CA (docs/protocol.md §7); an attested key
			// needs fresh evidence for this key.
			return fmt.Errorf("authorization for %s is already valid: the CA reuses attestations, and this client needs a fresh one for the new key", id)
		}
		return nil
	case acme.StatusPending:
	default:
		return fmt.Errorf("authorization for %s is %q", id, az.Status)
	}
	switch {
	case id.Type == TypePermanentIdentifier && id.Value == f.req.Identifier:
		ch, err := findChallenge(&az, ChallengeType)
		if err != nil {
			return err
		}
		return f.attest(azURL, id, ch)
	case id.Type == TypeDNS && slices.Contains(f.req.DNSNames, strings.ToLower(id.Value)):
		ch, err := findChallenge(&az, "http-01")
		if err != nil {
			return err
		}
		return f.http01(azURL, id, ch)
	}
	return fmt.Errorf("authorization %s is for %s, which was not ordered", azURL, id)
}

// findChallenge returns the challenge of type typ.
func findChallenge(az *acme.Authorization, typ string) (*acme.Challenge, error) {
	var offered []string
	for i := range az.Challenges {
		ch := &az.Challenges[i]
		if ch.Type == typ {
			if _, err := httpsURL(ch.URL); err != nil {
				return nil, fmt.Errorf("%s challenge: %w", typ, err)
			}
			return ch, nil
		}
		offered = append(offered, ch.Type)
	}
	return nil, fmt.Errorf("the CA offers no %s challenge for %s %q (offered: %s)",
		typ, az.Identifier.Type, az.Identifier.Value, strings.Join(offered, ", "))
}

// attest answers a device-attest-01 challenge: key authorization, N, kc
// naming the certificate key, platform evidence over D, bundle, attestation
// object, payload (challenge.NewAnswer), posted to the challenge URL.
func (f *flow) attest(azURL string, id Identifier, ch *acme.Challenge) error {
	op := fmt.Sprintf("%s challenge for %s", ChallengeType, id)
	keyAuth, err := challenge.KeyAuthorization(ch.Token, f.thumbprint)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	start := time.Now()
	ans, err := challenge.NewAnswer(f.ctx, f.attester, keyAuth, f.key.Public(), f.c.cfg.Now())
	if err != nil {
		if f.ctx.Err() != nil {
			return f.ctx.Err()
		}
		err = &EvidenceError{Err: err}
		f.c.emit(Event{Stage: StageEvidence, Duration: time.Since(start), Err: err, Message: "no evidence"})
		return err
	}
	evSum := sha256.Sum256(ans.Evidence.Data)
	f.c.emit(Event{Stage: StageEvidence, Duration: time.Since(start),
		Message: fmt.Sprintf("%s, %d bytes, over D = %x...", ans.Evidence.MediaType, len(ans.Evidence.Data), ans.D[:8]),
		Fields: map[string]string{
			"nonce": hex.EncodeToString(ans.Nonce), "d": hex.EncodeToString(ans.D),
			"kc_bytes": fmt.Sprint(len(ans.KC)), "evidence_media_type": ans.Evidence.MediaType,
			"evidence_bytes": fmt.Sprint(len(ans.Evidence.Data)), "evidence_sha256": hex.EncodeToString(evSum[:]),
			"attobj_bytes": fmt.Sprint(len(ans.AttObj)),
		}})

	start = time.Now()
	res, err := f.post.post(f.ctx, op, ch.URL, ans.Payload)
	if err != nil {
		f.c.emit(Event{Stage: StageChallenge, Duration: time.Since(start), Err: err, Message: "the CA refused the answer"})
		return err
	}
	var got acme.Challenge
	if err := decodeJSON(op, res.body, &got); err != nil {
		return err
	}
	if err := f.waitChallenge(op, azURL, &got); err != nil {
		f.c.emit(Event{Stage: StageChallenge, Duration: time.Since(start), Err: err, Message: "the CA refused the answer"})
		return err
	}
	f.answer = ans
	f.c.emit(Event{Stage: StageChallenge, Duration: time.Since(start),
		Message: fmt.Sprintf("%s valid for %s", ChallengeType, id),
		Fields:  map[string]string{"challenge": ch.URL, "identifier": id.Value}})
	return nil
}

// waitChallenge takes the challenge the CA answered a POST with and, unless
// it is already valid or invalid, polls its authorization until it is.
func (f *flow) waitChallenge(op, azURL string, got *acme.Challenge) error {
	switch got.Status {
	case acme.StatusValid:
		return nil
	case acme.StatusInvalid:
		return challengeProblem(op, got)
	}
	typ := got.Type
	var az acme.Authorization
	err := poll(f.ctx, f.post, op, azURL, f.c.cfg.PollTimeout, &az, func() (bool, error) {
		switch az.Status {
		case acme.StatusPending:
			// A challenge the CA tried and failed but left pending (step-ca
			// does so for a connection error or an internal one) waits for
			// the client to try again: report the failure now.
			for i := range az.Challenges {
				if ch := &az.Challenges[i]; ch.Type == typ && ch.Error != nil {
					return true, challengeProblem(op, ch)
				}
			}
			return false, nil
		case acme.StatusValid:
			return true, nil
		case acme.StatusInvalid:
			for i := range az.Challenges {
				if az.Challenges[i].Type == typ && az.Challenges[i].Error != nil {
					return true, challengeProblem(op, &az.Challenges[i])
				}
			}
			return true, fmt.Errorf("%s: the authorization became invalid, without a problem document", op)
		}
		return true, fmt.Errorf("%s: the authorization became %q", op, az.Status)
	})
	return err
}

// challengeProblem is the problem of an invalid challenge.
func challengeProblem(op string, ch *acme.Challenge) error {
	if ch.Error == nil {
		return fmt.Errorf("%s: the challenge is invalid, without a problem document", op)
	}
	return problemFrom(op, ch.Error)
}

// http01 satisfies a dns identifier with lego's http-01 solver (RFC 8555 §8.3).
func (f *flow) http01(azURL string, id Identifier, ch *acme.Challenge) error {
	op := fmt.Sprintf("http-01 challenge for %s", id)
	start := time.Now()
	keyAuth, err := f.core.GetKeyAuthorization(ch.Token)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	host, port, _ := net.SplitHostPort(f.c.cfg.HTTP01Address)
	solver := http01.NewProviderServer(host, port)
	if err := solver.Present(id.Value, ch.Token, keyAuth); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer func() { _ = solver.CleanUp(id.Value, ch.Token, keyAuth) }()
	got, err := f.core.Challenges.New(ch.URL)
	if err != nil {
		err = wrap(op, err)
		f.c.emit(Event{Stage: StageHTTP01, Duration: time.Since(start), Err: err})
		return err
	}
	if err := f.waitChallenge(op, azURL, &got.Challenge); err != nil {
		f.c.emit(Event{Stage: StageHTTP01, Duration: time.Since(start), Err: err})
		return err
	}
	f.c.emit(Event{Stage: StageHTTP01, Duration: time.Since(start),
		Message: fmt.Sprintf("http-01 valid for %s (served on %s)", id.Value, f.c.cfg.HTTP01Address),
		Fields:  map[string]string{"challenge": ch.URL, "identifier": id.Value}})
	return nil
}

// finalize waits for the order to be ready, sends the CSR, waits for the
// certificate, downloads it, and checks what was issued.
func (f *flow) finalize(orderURL string) (*Certificate, error) {
	start := time.Now()
	var o acme.Order
	if err := poll(f.ctx, f.post, "order", orderURL, f.c.cfg.PollTimeout, &o, func() (bool, error) {
		switch o.Status {
		case acme.StatusPending:
			return false, nil
		case acme.StatusReady:
			return true, nil
		case acme.StatusInvalid:
			if o.Error != nil {
				return true, problemFrom("order", o.Error)
			}
		}
		return true, fmt.Errorf("order %s is %q, want ready", orderURL, o.Status)
	}); err != nil {
		return nil, err
	}
	csr, err := newCSR(f.key, f.req.Identifier, f.req.DNSNames)
	if err != nil {
		return nil, err
	}
	if _, err := httpsURL(o.Finalize); err != nil {
		return nil, fmt.Errorf("order %s: finalize URL: %w", orderURL, err)
	}
	fin, err := f.core.Orders.UpdateForCSR(o.Finalize, csr)
	if err != nil {
		err = wrap("finalize", err)
		f.c.emit(Event{Stage: StageFinalize, Duration: time.Since(start), Err: err})
		return nil, err
	}
	o = fin.Order
	if o.Status != acme.StatusValid {
		if err := poll(f.ctx, f.post, "finalize", orderURL, f.c.cfg.PollTimeout, &o, func() (bool, error) {
			switch o.Status {
			case acme.StatusProcessing, acme.StatusReady:
				return false, nil
			case acme.StatusValid:
				return true, nil
			case acme.StatusInvalid:
				if o.Error != nil {
					return true, problemFrom("finalize", o.Error)
				}
			}
			return true, fmt.Errorf("order %s is %q after finalize", orderURL, o.Status)
		}); err != nil {
			f.c.emit(Event{Stage: StageFinalize, Duration: time.Since(start), Err: err})
			return nil, err
		}
	}
	if _, err := httpsURL(o.Certificate); err != nil {
		return nil, fmt.Errorf("order %s: certificate URL: %w", orderURL, err)
	}
	chainPEM, issuerPEM, err := f.core.Certificates.Get(o.Certificate, true)
	if err != nil {
		return nil, wrap("certificate download", err)
	}
	cert, err := f.checkIssued(chainPEM, issuerPEM)
	if err != nil {
		f.c.emit(Event{Stage: StageFinalize, Duration: time.Since(start), Err: err})
		return nil, err
	}
	cert.CertURL, cert.CertStableURL, cert.OrderURL = o.Certificate, o.Certificate, orderURL
	leaf := cert.Leaf()
	f.c.emit(Event{Stage: StageFinalize, Duration: time.Since(start),
		Message: fmt.Sprintf("certificate %x valid until %s", leaf.SerialNumber, leaf.NotAfter.Format(time.RFC3339)),
		Fields: map[string]string{"certificate": o.Certificate, "serial": cert.Serial,
			"not_before": leaf.NotBefore.Format(time.RFC3339), "not_after": leaf.NotAfter.Format(time.RFC3339)}})
	return cert, nil
}

// checkIssued parses the chain and checks that the CA certified our key,
// that the certificate is current, that it carries the EAR, and that the
// DNS names asked for are in it.
func (f *flow) checkIssued(chainPEM, issuerPEM []byte) (*Certificate, error) {
	chain, err := parseChain(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate download: %w", err)
	}
	leaf := chain[0]
	if !samePublicKey(f.key.Public(), leaf.PublicKey) {
		return nil, errors.New("the CA issued a certificate for a key that is not the attested certificate key")
	}
	now := f.c.cfg.Now()
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("the CA issued a certificate that expired at %s", leaf.NotAfter.Format(time.RFC3339))
	}
	for i := 1; i < len(chain); i++ {
		if err := chain[i-1].CheckSignatureFrom(chain[i]); err != nil {
			return nil, fmt.Errorf("certificate chain: certificate %d is not signed by the next: %w", i, err)
		}
	}
	ear, err := challenge.EARFromCertificate(leaf)
	if err != nil {
		return nil, fmt.Errorf("the certificate lacks its attestation result: %w", err)
	}
	var missing []string
	for _, n := range f.req.DNSNames {
		if !slices.Contains(leaf.DNSNames, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the CA validated the order but issued a certificate without the DNS names %s "+
			"(step-ca's attested-leaf template writes only the permanent identifier); nothing was written",
			strings.Join(missing, ", "))
	}
	evSum := sha256.Sum256(f.answer.Evidence.Data)
	return &Certificate{
		Resource: Resource{
			Domain:            f.req.Identifier,
			Identifier:        f.req.Identifier,
			DNSNames:          f.req.DNSNames,
			Server:            f.c.cfg.DirectoryURL,
			AccountURL:        f.accountURL,
			KeyType:           f.req.KeyType,
			Serial:            fmt.Sprintf("%x", leaf.SerialNumber),
			NotBefore:         leaf.NotBefore.UTC(),
			NotAfter:          leaf.NotAfter.UTC(),
			Nonce:             hex.EncodeToString(f.answer.Nonce),
			EvidenceMediaType: f.answer.Evidence.MediaType,
			EvidenceSHA256:    hex.EncodeToString(evSum[:]),
			ObtainedAt:        now.UTC(),
		},
		Key:       f.key,
		Chain:     chain,
		ChainPEM:  chainPEM,
		IssuerPEM: issuerPEM,
		EAR:       ear,
	}, nil
}
