package verifier

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/veraison/ear"
)

// Names used in the EARs this verifier signs (docs/protocol.md §6).
const (
	// VerifierBuild and VerifierDeveloper fill ear.verifier-id.
	VerifierBuild     = "attest-acme"
	VerifierDeveloper = "https://github.com/attest-acme/attest-acme"
	// claimWorkload names the matched workload in ear.veraison.policy-claims.
	claimWorkload = "workload"
	// claimReason explains a contraindicated or warning status.
	claimReason = "reason"
	// DefaultEARMaxAge is how old an EAR may be when the CA checks it.
	DefaultEARMaxAge = 5 * time.Minute
	// earClockSkew is how far in the future an EAR's iat may lie.
	earClockSkew = 30 * time.Second
	// MaxEARSize bounds an EAR token read from a verifier.
	MaxEARSize = 32 << 10
)

// Outcome is one appraisal's result, ready to be signed as an EAR.
type Outcome struct {
	// Platform is the submod name: "tpm", "sev-snp", "tdx", "cca" or "psa".
	Platform string
	// Status is the overall trust tier of the platform's submod.
	Status ear.TrustTier
	// TrustVector holds what was actually checked (AR4SI claims).
	TrustVector ear.TrustVector
	// PolicyID is ear.appraisal-policy-id.
	PolicyID string
	// Key is the attested key (the kc's cnf), carried as akpub; nil for bare
	// platform evidence.
	Key crypto.PublicKey
	// Workload names the matched reference values; empty when none matched.
	Workload string
	// Reason explains a status other than affirming.
	Reason string
	// Nonce is the session nonce, echoed as eat_nonce.
	Nonce []byte
}

// Signer signs EARs with the verifier's ES256 key.
type Signer struct {
	key *ecdsa.PrivateKey
	now func() time.Time
}

// NewSigner returns a Signer for a P-256 key; now is the clock for iat.
func NewSigner(key *ecdsa.PrivateKey, now func() time.Time) (*Signer, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("EAR signing key must be an ECDSA P-256 key (ES256)")
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{key: key, now: now}, nil
}

// Public returns the EAR verification key.
func (s *Signer) Public() *ecdsa.PublicKey { return &s.key.PublicKey }

// Sign encodes o as an EAR (veraison/ear) and signs it ES256.
func (s *Signer) Sign(o Outcome) ([]byte, error) {
	ar := ear.NewAttestationResult(o.Platform, VerifierBuild, VerifierDeveloper)
	iat := s.now().Unix()
	ar.IssuedAt = &iat
	nonce := base64.URLEncoding.EncodeToString(o.Nonce) // padded, as Veraison writes it (docs/protocol.md §7)
	ar.Nonce = &nonce

	appr := ar.Submods[o.Platform]
	status := o.Status
	appr.Status = &status
	tv := o.TrustVector
	appr.TrustVector = &tv
	if o.PolicyID != "" {
		pid := o.PolicyID
		appr.AppraisalPolicyID = &pid
	}
	if o.Key != nil {
		if err := appr.SetKeyAttestation(o.Key); err != nil {
			return nil, fmt.Errorf("EAR: akpub: %w", err)
		}
	}
	claims := map[string]any{claimWorkload: o.Workload}
	if o.Reason != "" {
		claims[claimReason] = o.Reason
	}
	appr.VeraisonPolicyClaims = &claims

	// ar.Sign builds a jwt.Token claim by claim and costs as much as the
	// ECDSA signature itself; signing the EAR's own JSON (validated by
	// MarshalJSON) as the JWS payload gives the same token for half the work.
	payload, err := ar.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("EAR: %w", err)
	}
	tok, err := jws.Sign(payload, jws.WithKey(jwa.ES256(), s.key))
	if err != nil {
		return nil, fmt.Errorf("EAR: signing: %w", err)
	}
	return tok, nil
}

// Result is a checked EAR.
type Result struct {
	// Platform is the name of the submod that carries the outcome.
	Platform string
	// Status is that submod's status.
	Status ear.TrustTier
	// TrustVector is that submod's trustworthiness vector.
	TrustVector ear.TrustVector
	// PolicyID is that submod's appraisal policy id.
	PolicyID string
	// Workload is the matched workload ("" when the EAR names none).
	Workload string
	// Reason is the verifier's explanation of a non-affirming status.
	Reason string
	// Key is the akpub the EAR carries, nil if none.
	Key crypto.PublicKey
	// IssuedAt is the EAR's iat.
	IssuedAt time.Time
	// Token is the signed EAR.
	Token []byte
}

// Checker checks EARs the way the CA must before it trusts one
// (docs/protocol.md §6): signature under a pinned ES256 key, iat within
// MaxAge, eat_nonce, status, and akpub.
type Checker struct {
	// Key is the pinned EAR verification key (P-256).
	Key *ecdsa.PublicKey
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxAge bounds how old an EAR may be; zero means DefaultEARMaxAge.
	MaxAge time.Duration
	// Accept lists the statuses accepted; empty means affirming only.
	Accept []ear.TrustTier
}

// Check verifies token and requires its platform submod to carry akpub equal
// to key (compared by key parameters).
func (c *Checker) Check(token, nonce []byte, key crypto.PublicKey) (*Result, error) {
	if key == nil {
		return nil, errors.New("EAR check: no expected key given")
	}
	r, err := c.check(token, nonce)
	if err != nil {
		return nil, err
	}
	if r.Key == nil {
		return nil, errors.New("EAR: no submod carries the attested key (no akpub in ear.veraison.key-attestation)")
	}
	if !keysEqual(r.Key, key) {
		return nil, errors.New("EAR: akpub is not the key named in the kc")
	}
	return r, nil
}

// CheckWithoutKey verifies token without requiring an akpub: for EARs over
// bare platform evidence (a Veraison deployment), where the caller binds the
// kc to the evidence itself.
func (c *Checker) CheckWithoutKey(token, nonce []byte) (*Result, error) {
	return c.check(token, nonce)
}

func (c *Checker) check(token, nonce []byte) (*Result, error) {
	if c.Key == nil {
		return nil, errors.New("EAR check: no verification key pinned")
	}
	if len(token) > MaxEARSize {
		return nil, fmt.Errorf("EAR: %d bytes, over the limit of %d", len(token), MaxEARSize)
	}
	// Workaround: ear.AttestationResult.Verify runs jwt.Parse, which checks
	// iat against the system clock with no skew allowed, so an EAR from a
	// verifier whose clock is a second ahead fails, and the Checker's clock is
	// ignored. The signature is checked here with jws.Verify instead, and the
	// claims parsed and validated by veraison/ear; iat is checked below.
	// ES256 is fixed here, not read from the token: a token whose header names
	// another algorithm (none, HS256 keyed with the public key) fails.
	payload, err := jws.Verify(token, jws.WithKey(jwa.ES256(), c.Key))
	if err != nil {
		return nil, fmt.Errorf("EAR: signature: %w", err)
	}
	var ar ear.AttestationResult
	if err := ar.UnmarshalJSON(payload); err != nil {
		return nil, fmt.Errorf("EAR: claims: %w", err)
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	maxAge := c.MaxAge
	if maxAge == 0 {
		maxAge = DefaultEARMaxAge
	}
	if ar.IssuedAt == nil {
		return nil, errors.New("EAR: iat is missing")
	}
	iat := time.Unix(*ar.IssuedAt, 0)
	if t := now(); iat.After(t.Add(earClockSkew)) {
		return nil, fmt.Errorf("EAR: iat %s is in the future", iat.UTC().Format(time.RFC3339))
	} else if iat.Before(t.Add(-maxAge)) {
		return nil, fmt.Errorf("EAR: iat %s is more than %s old", iat.UTC().Format(time.RFC3339), maxAge)
	}
	if ar.Nonce == nil {
		return nil, errors.New("EAR: eat_nonce is missing")
	}
	got, err := decodeEARNonce(*ar.Nonce)
	if err != nil {
		return nil, fmt.Errorf("EAR: eat_nonce: %w", err)
	}
	if !bytes.Equal(got, nonce) {
		return nil, errors.New("EAR: eat_nonce is not the nonce of this challenge")
	}
	if len(ar.Submods) == 0 {
		return nil, errors.New("EAR: no submods")
	}

	accept := c.Accept
	if len(accept) == 0 {
		accept = []ear.TrustTier{ear.TrustTierAffirming}
	}
	r := &Result{IssuedAt: iat, Token: token}
	names := make([]string, 0, len(ar.Submods))
	for name := range ar.Submods {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		a := ar.Submods[name]
		if a.Status == nil {
			return nil, fmt.Errorf("EAR: submod %q has no status", name)
		}
		if !slices.Contains(accept, *a.Status) {
			if reason := reasonOf(a); reason != "" {
				return nil, fmt.Errorf("EAR: submod %q status is %s: %s", name, a.Status, reason)
			}
			return nil, fmt.Errorf("EAR: submod %q status is %s", name, a.Status)
		}
		// The platform submod is the one that carries akpub, or the only one.
		if a.VeraisonKeyAttestation == nil && len(names) > 1 {
			continue
		}
		if r.Platform != "" {
			return nil, fmt.Errorf("EAR: submods %q and %q both carry a key", r.Platform, name)
		}
		r.Platform, r.Status = name, *a.Status
		if a.TrustVector != nil {
			r.TrustVector = *a.TrustVector
		}
		if a.AppraisalPolicyID != nil {
			r.PolicyID = *a.AppraisalPolicyID
		}
		if a.VeraisonPolicyClaims != nil {
			r.Workload, _ = (*a.VeraisonPolicyClaims)[claimWorkload].(string)
		}
		r.Reason = reasonOf(a)
		if a.VeraisonKeyAttestation != nil {
			k, err := a.GetKeyAttestation()
			if err != nil {
				return nil, fmt.Errorf("EAR: submod %q: %w", name, err)
			}
			r.Key = k
		}
	}
	if r.Platform == "" {
		// Several submods, none with a key (a Veraison CCA result: platform
		// and realm): all were accepted above; name them all.
		r.Platform = strings.Join(names, "+")
		r.Status = *ar.Submods[names[0]].Status
	}
	return r, nil
}

// reasonOf returns a submod's explanation of its status: our "reason", or
// the "problem" a Veraison deployment writes.
func reasonOf(a *ear.Appraisal) string {
	if a.VeraisonPolicyClaims == nil {
		return ""
	}
	for _, k := range []string{claimReason, "problem"} {
		if s, ok := (*a.VeraisonPolicyClaims)[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// decodeEARNonce accepts eat_nonce as base64url with or without padding
// (docs/protocol.md §7).
func decodeEARNonce(s string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(strings.TrimRight(s, "="))
}

// keysEqual compares public keys by their parameters.
func keysEqual(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

// Describe verifies an EAR's ES256 signature under key and returns what it
// says, without the Checker's nonce, freshness and status checks: for showing
// an EAR (the demo, logs), never for deciding to trust one.
func Describe(token []byte, key *ecdsa.PublicKey) (*Result, error) {
	c := &Checker{Key: key, MaxAge: 100 * 365 * 24 * time.Hour,
		Accept: []ear.TrustTier{ear.TrustTierNone, ear.TrustTierAffirming, ear.TrustTierWarning, ear.TrustTierContraindicated}}
	// The nonce is read from the token itself so that the nonce check passes.
	payload, err := jws.Verify(token, jws.WithKey(jwa.ES256(), key))
	if err != nil {
		return nil, fmt.Errorf("EAR: signature: %w", err)
	}
	var ar ear.AttestationResult
	if err := ar.UnmarshalJSON(payload); err != nil {
		return nil, fmt.Errorf("EAR: claims: %w", err)
	}
	if ar.Nonce == nil || ar.IssuedAt == nil {
		return nil, errors.New("EAR: eat_nonce or iat is missing")
	}
	nonce, err := decodeEARNonce(*ar.Nonce)
	if err != nil {
		return nil, fmt.Errorf("EAR: eat_nonce: %w", err)
	}
	iat := time.Unix(*ar.IssuedAt, 0)
	c.Now = func() time.Time { return iat }
	return c.check(token, nonce)
}
