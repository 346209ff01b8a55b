package harness

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	xacme "golang.org/x/crypto/acme"

	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/evidence"
)

// ACME identifier and challenge types of the device-attest draft.
const (
	IdentifierPermanent = "permanent-identifier"
	ChallengeDevice     = "device-attest-01"
)

// Account is a registered ACME account. Its Client is safe for concurrent
// use, so one account may run many orders at once.
type Account struct {
	// Client is x/crypto/acme's client, registered with the CA.
	Client *xacme.Client
	// Key is the account key.
	Key *ecdsa.PrivateKey
}

// NewAccount registers a new account (P-256 key) with the CA. Its client
// never retries a server error (5xx): callers see the first answer, and
// retry a serverInternal themselves; it retries a bad nonce a few times.
func (c *CA) NewAccount(ctx context.Context) (*Account, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cl := &xacme.Client{
		Key:          key,
		DirectoryURL: c.DirectoryURL(),
		HTTPClient:   c.HTTPClient(),
		RetryBackoff: func(n int, _ *http.Request, res *http.Response) time.Duration {
			if n > 3 || (res != nil && res.StatusCode >= 500) {
				return -1
			}
			return 10 * time.Millisecond
		},
	}
	if _, err := cl.Register(ctx, &xacme.Account{}, xacme.AcceptTOS); err != nil {
		return nil, fmt.Errorf("harness: register: %w", err)
	}
	return &Account{Client: cl, Key: key}, nil
}

// KeyAuthorization is token "." base64url(thumbprint of the account key)
// (RFC 8555 §8.1).
func (a *Account) KeyAuthorization(token string) (string, error) {
	// x/crypto/acme computes the same string for every challenge type.
	return a.Client.HTTP01ChallengeResponse(token)
}

// Order is a permanent-identifier order with its device-attest-01 challenge.
type Order struct {
	// Account placed the order.
	Account *Account
	// Order is the order as created.
	Order *xacme.Order
	// Challenge is the permanent-identifier's device-attest-01 challenge.
	Challenge *xacme.Challenge
	// AuthzURL is that challenge's authorization.
	AuthzURL string
	// Key is a fresh P-256 certificate key, for Answer and Finalize.
	Key crypto.Signer
}

// NewOrder creates an order for the permanent-identifier id and any extra
// identifiers (DNS names in the same order) and finds its device-attest-01
// challenge.
func (a *Account) NewOrder(ctx context.Context, id string, extra ...xacme.AuthzID) (*Order, error) {
	ids := append([]xacme.AuthzID{{Type: IdentifierPermanent, Value: id}}, extra...)
	o, err := a.Client.AuthorizeOrder(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("harness: new order for %q: %w", id, err)
	}
	out := &Order{Account: a, Order: o}
	for _, u := range o.AuthzURLs {
		az, err := a.Client.GetAuthorization(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("harness: authorization %s: %w", u, err)
		}
		if az.Identifier.Type != IdentifierPermanent || az.Identifier.Value != id {
			continue
		}
		for _, ch := range az.Challenges {
			if ch.Type == ChallengeDevice {
				out.Challenge, out.AuthzURL = ch, u
			}
		}
	}
	if out.Challenge == nil {
		return nil, fmt.Errorf("harness: order %s offers no %s challenge for %q", o.URI, ChallengeDevice, id)
	}
	if out.Key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	return out, nil
}

// KeyAuthorization is the challenge's key authorization for this account.
func (o *Order) KeyAuthorization() (string, error) {
	return o.Account.KeyAuthorization(o.Challenge.Token)
}

// Nonce is N = SHA-256(keyAuthorization), the nonce the kc must carry.
func (o *Order) Nonce() ([]byte, error) {
	ka, err := o.KeyAuthorization()
	if err != nil {
		return nil, err
	}
	return challenge.Nonce(ka), nil
}

// Answer builds the cmw answer to the challenge as a client does
// (challenge.NewAnswer): a kc naming o.Key, evidence from a over D, the
// bundle, the attestation object and the payload.
func (o *Order) Answer(ctx context.Context, a evidence.Attester) (*challenge.Answer, error) {
	return o.AnswerFor(ctx, a, o.Key.Public(), time.Now())
}

// AnswerFor is Answer with the kc naming pub, issued at iat.
func (o *Order) AnswerFor(ctx context.Context, a evidence.Attester, pub crypto.PublicKey, iat time.Time) (*challenge.Answer, error) {
	ka, err := o.KeyAuthorization()
	if err != nil {
		return nil, err
	}
	ans, err := challenge.NewAnswer(ctx, a, ka, pub, iat)
	if err != nil {
		return nil, fmt.Errorf("harness: answer: %w", err)
	}
	return ans, nil
}

// Post sends payload as the device-attest-01 answer (x/crypto/acme's Accept
// posts Challenge.Payload as the JWS payload) and returns the challenge the
// CA answers with. An invalid challenge is not an error: look at its Status
// and Error. A serverInternal answer is (see Problem).
func (o *Order) Post(ctx context.Context, payload []byte) (*xacme.Challenge, error) {
	ch := *o.Challenge
	ch.Payload = payload
	return o.Account.Client.Accept(ctx, &ch)
}

// ChallengeState reads the device-attest-01 challenge through its
// authorization (never with a POST-as-GET to the challenge URL, which step-ca
// treats as an empty answer).
func (o *Order) ChallengeState(ctx context.Context) (*xacme.Challenge, error) {
	az, err := o.Account.Client.GetAuthorization(ctx, o.AuthzURL)
	if err != nil {
		return nil, fmt.Errorf("harness: authorization %s: %w", o.AuthzURL, err)
	}
	for _, ch := range az.Challenges {
		if ch.URI == o.Challenge.URI {
			return ch, nil
		}
	}
	return nil, fmt.Errorf("harness: authorization %s lost challenge %s", o.AuthzURL, o.Challenge.URI)
}

// Refresh fetches the order's current state.
func (o *Order) Refresh(ctx context.Context) (*xacme.Order, error) {
	return o.Account.Client.GetOrder(ctx, o.Order.URI)
}

// Wait waits until the order is ready (or valid) and returns it; it fails
// when the order becomes invalid or ctx ends. An order whose challenge
// failed may stay pending: bound ctx.
func (o *Order) Wait(ctx context.Context) (*xacme.Order, error) {
	return o.Account.Client.WaitOrder(ctx, o.Order.URI)
}

// Finalize posts a CSR for key (with the given DNS names, and no subject)
// to the order's finalize URL without waiting for the order to be ready,
// and returns the certificate chain when the CA issues one.
func (o *Order) Finalize(ctx context.Context, key crypto.Signer, dnsNames ...string) ([]*x509.Certificate, error) {
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: dnsNames}, key)
	if err != nil {
		return nil, err
	}
	return o.FinalizeCSR(ctx, csr)
}

// FinalizeCSR posts a DER CSR to the order's finalize URL and returns the
// certificate chain when the CA issues one.
func (o *Order) FinalizeCSR(ctx context.Context, csr []byte) ([]*x509.Certificate, error) {
	der, _, err := o.Account.Client.CreateOrderCert(ctx, o.Order.FinalizeURL, csr, true)
	if err != nil {
		return nil, err
	}
	chain := make([]*x509.Certificate, 0, len(der))
	for _, d := range der {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("harness: certificate: %w", err)
		}
		chain = append(chain, c)
	}
	return chain, nil
}

// Obtain runs the rest of the issuance for o.Key with evidence from a:
// answer, post, wait for the order, finalize. It fails when the challenge is
// not valid.
func (o *Order) Obtain(ctx context.Context, a evidence.Attester, dnsNames ...string) ([]*x509.Certificate, *challenge.Answer, error) {
	ans, err := o.Answer(ctx, a)
	if err != nil {
		return nil, nil, err
	}
	ch, err := o.Post(ctx, ans.Payload)
	if err != nil {
		return nil, ans, fmt.Errorf("harness: answer: %w", err)
	}
	if ch.Status != xacme.StatusValid {
		return nil, ans, fmt.Errorf("harness: challenge is %s: %v", ch.Status, ch.Error)
	}
	if _, err := o.Wait(ctx); err != nil {
		return nil, ans, fmt.Errorf("harness: wait for the order: %w", err)
	}
	chain, err := o.Finalize(ctx, o.Key, dnsNames...)
	if err != nil {
		return nil, ans, fmt.Errorf("harness: finalize: %w", err)
	}
	return chain, ans, nil
}

// Issue is the whole issuance for one permanent-identifier on a new order:
// NewOrder, then Obtain.
func (a *Account) Issue(ctx context.Context, att evidence.Attester, id string) ([]*x509.Certificate, *Order, error) {
	o, err := a.NewOrder(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	chain, _, err := o.Obtain(ctx, att)
	return chain, o, err
}
