package caplugin

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/smallstep/certificates/acme"
	"go.step.sm/crypto/keyutil"

	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/verifier"
)

// validator runs the cmw validation of one device-attest-01 answer
// (docs/protocol.md §1.5-1.6 and §7).
type validator struct {
	db       acme.DB // step-ca's own ACME database, undecorated
	store    *store
	verifier verifier.Verifier
	checker  *verifier.Checker
	// bare says the verifier is a Veraison deployment: it gets the bare
	// platform evidence with nonce D, and its EAR carries no akpub.
	bare    bool
	timeout time.Duration
	policy  *IssuancePolicy
	now     func() time.Time
	log     *slog.Logger
	metrics *Metrics
}

// attempt is what one validation learned, for the log line.
type attempt struct {
	ch         *acme.Challenge
	orderID    string
	identifier string
	workload   string
	platform   string
}

func (a *attempt) logAttrs() []any {
	return []any{
		slog.String("order", a.orderID),
		slog.String("authorization", a.ch.AuthorizationID),
		slog.String("challenge", a.ch.ID),
		slog.String("account", a.ch.AccountID),
		slog.String("identifier", a.identifier),
	}
}

// failure is a failed validation: the ACME problem and the metrics reason.
type failure struct {
	problem *challenge.Problem
	reason  string
}

func fail(reason string, p *challenge.Problem) *failure { return &failure{problem: p, reason: reason} }

// validate replaces step-ca's rejection of a cmw answer with the real
// validation. On success the authorization gets the attested key's
// fingerprint and ch is written valid; on a bad answer ch is written invalid
// with the problem; when the verifier could not do its job nothing is written,
// ch stays pending in the database, and the returned serverInternal error
// becomes the HTTP answer, so the client may POST the challenge again.
func (v *validator) validate(ctx context.Context, ch *acme.Challenge) error {
	a := &attempt{ch: ch}
	rec, f := v.run(ctx, a)
	if f == nil {
		f = v.commit(ctx, a, rec)
	}
	if f == nil {
		v.metrics.challenge(resultValid, reasonOK)
		v.log.InfoContext(ctx, "cmw challenge valid", append(a.logAttrs(),
			slog.String("workload", a.workload), slog.String("platform", a.platform))...)
		return nil
	}

	p := f.problem
	if p.Retryable() {
		v.metrics.challenge(resultRetryable, f.reason)
		v.log.WarnContext(ctx, "cmw challenge left pending: the verifier could not appraise",
			append(a.logAttrs(), slog.String("reason", f.reason), slog.Any("error", p.Err))...)
		// Keep the caller's copy consistent with the database: still pending.
		ch.Status = acme.StatusPending
		ch.Error = nil
		return &acme.Error{
			Type:   string(challenge.ServerInternal),
			Detail: p.Detail,
			Status: http.StatusInternalServerError,
			Err:    p,
		}
	}

	v.metrics.challenge(resultInvalid, f.reason)
	v.log.InfoContext(ctx, "cmw challenge invalid", append(a.logAttrs(),
		slog.String("reason", f.reason), slog.String("workload", a.workload), slog.String("detail", p.Detail))...)
	ch.Status = acme.StatusInvalid
	ch.Error = toACMEError(p, a.identifier)
	return v.db.UpdateChallenge(ctx, ch)
}

// run checks the answer and appraises it; it returns the record to store.
func (v *validator) run(ctx context.Context, a *attempt) (*earRecord, *failure) {
	ch := a.ch
	now := v.now()

	orderID, err := v.store.orderOf(ch.AuthorizationID)
	if err != nil {
		return nil, fail(reasonInternal, challenge.Internal(err))
	}
	a.orderID = orderID
	az, err := v.db.GetAuthorization(ctx, ch.AuthorizationID)
	if err != nil {
		return nil, fail(reasonInternal, challenge.Internal(fmt.Errorf("loading authorization %s: %w", ch.AuthorizationID, err)))
	}
	a.identifier = az.Identifier.Value
	if az.Identifier.Type != acme.PermanentIdentifier {
		return nil, fail(reasonPayload, challenge.BadAttestation(fmt.Errorf("identifier type %q cannot be attested with %q, want %q",
			az.Identifier.Type, challenge.Format, acme.PermanentIdentifier)))
	}

	// The key authorization binds the token and the account key: a bundle
	// made for another challenge or account carries another nonce.
	acc, err := v.db.GetAccount(ctx, ch.AccountID)
	if err != nil {
		return nil, fail(reasonInternal, challenge.Internal(fmt.Errorf("loading account %s: %w", ch.AccountID, err)))
	}
	if acc.Key == nil {
		return nil, fail(reasonInternal, challenge.Internal(fmt.Errorf("account %s has no key", ch.AccountID)))
	}
	tp, err := acc.Key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fail(reasonInternal, challenge.Internal(fmt.Errorf("account key thumbprint: %w", err)))
	}
	keyAuth, err := challenge.KeyAuthorization(ch.Token, base64.RawURLEncoding.EncodeToString(tp))
	if err != nil {
		return nil, fail(reasonInternal, challenge.Internal(err))
	}
	dec, bundle, err := challenge.DecodePayload(ch.Payload, keyAuth, now)
	if err != nil {
		return nil, fail(reasonPayload, challenge.AsProblem(err))
	}

	// Appraisal: the bundle with N for our verifiers, the bare platform
	// evidence with D for a Veraison deployment (docs/protocol.md §5).
	ev, nonce := verifier.Evidence{MediaType: verifier.MediaTypeBundle, Data: bundle}, challenge.Nonce(keyAuth)
	if v.bare {
		ev, nonce = dec.Bundle.Platform, dec.D
	}
	token, f := v.appraise(ctx, ev, nonce)
	if f != nil {
		return nil, f
	}

	var res *verifier.Result
	if v.bare {
		res, err = v.checker.CheckWithoutKey(token, nonce)
	} else {
		res, err = v.checker.Check(token, nonce, dec.KC.Key)
	}
	if err != nil {
		return nil, fail(reasonEAR, challenge.BadAttestation(err))
	}
	a.workload, a.platform = res.Workload, res.Platform
	if v.bare && a.workload == "" {
		a.workload = res.PolicyID
	}
	if a.workload == "" {
		return nil, fail(reasonEAR, challenge.BadAttestation(errors.New("EAR: names no workload: the evidence matched no reference values")))
	}

	// Issuance policy, deny by default (DESIGN.md decision 6).
	if err := v.policy.AllowsIdentifier(a.workload, a.identifier); err != nil {
		return nil, fail(reasonIdentifier, challenge.Rejected("%v", err))
	}
	if orderID != "" {
		o, err := v.db.GetOrder(ctx, orderID)
		if err != nil {
			return nil, fail(reasonInternal, challenge.Internal(fmt.Errorf("loading order %s: %w", orderID, err)))
		}
		for _, id := range o.Identifiers {
			switch id.Type {
			case acme.PermanentIdentifier:
				// Each permanent-identifier has a challenge of its own.
			case acme.DNS:
				if err := v.policy.AllowsDNSName(a.workload, id.Value); err != nil {
					return nil, fail(reasonIdentifier, challenge.Rejected("%v (in the same order)", err))
				}
			default:
				return nil, fail(reasonIdentifier, challenge.Rejected("workload %q may not have %s identifier %q (in the same order)",
					a.workload, id.Type, id.Value))
			}
		}
	}

	fp, err := keyutil.Fingerprint(dec.KC.Key)
	if err != nil {
		return nil, fail(reasonInternal, challenge.Internal(fmt.Errorf("attested key fingerprint: %w", err)))
	}
	return &earRecord{
		Fingerprint:     fp,
		Identifier:      a.identifier,
		Workload:        a.workload,
		Platform:        res.Platform,
		EAR:             string(token),
		AccountID:       ch.AccountID,
		OrderID:         orderID,
		AuthorizationID: ch.AuthorizationID,
		ChallengeID:     ch.ID,
		ValidatedAt:     now.UTC(),
		ExpiresAt:       az.ExpiresAt.UTC(),
	}, nil
}

// appraise calls the verifier under the configured timeout and sorts its
// errors: a refusal of the evidence is the answer's fault; anything else
// (unreachable, slow, a broken answer) is ours and retryable.
func (v *validator) appraise(ctx context.Context, ev verifier.Evidence, nonce []byte) ([]byte, *failure) {
	actx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	start := time.Now()
	token, err := v.verifier.Appraise(actx, ev, nonce)
	elapsed := time.Since(start)
	switch {
	case err == nil && len(token) == 0:
		v.metrics.verifierCall("error", elapsed)
		return nil, fail(reasonVerifierUnavailable, challenge.Internal(errors.New("verifier answered without an attestation result; the challenge is still pending, retry it")))
	case err == nil:
		v.metrics.verifierCall("ok", elapsed)
		return token, nil
	case verifier.IsRejected(err):
		v.metrics.verifierCall("rejected", elapsed)
		return nil, fail(reasonVerifierRejected, challenge.BadAttestation(fmt.Errorf("verifier: %w", err)))
	default:
		v.metrics.verifierCall("error", elapsed)
		what := "could not be reached or answered nonsense"
		if errors.Is(err, context.DeadlineExceeded) || actx.Err() != nil {
			what = fmt.Sprintf("did not answer within %s", v.timeout)
		}
		p := challenge.Internal(fmt.Errorf("verifier: %w", err))
		p.Detail = "the verifier " + what + "; the challenge is still pending, retry it"
		return nil, fail(reasonVerifierUnavailable, p)
	}
}

// commit stores the attestation result, the authorization's key fingerprint
// and the valid challenge, in that order: a failure part way leaves the
// challenge pending and retryable, never valid without a stored result.
func (v *validator) commit(ctx context.Context, a *attempt, rec *earRecord) *failure {
	ch := a.ch
	if err := v.store.putEAR(rec); err != nil {
		return fail(reasonInternal, challenge.Internal(err))
	}
	az, err := v.db.GetAuthorization(ctx, ch.AuthorizationID)
	if err != nil {
		return fail(reasonInternal, challenge.Internal(fmt.Errorf("loading authorization %s: %w", ch.AuthorizationID, err)))
	}
	az.Fingerprint = rec.Fingerprint
	if err := v.db.UpdateAuthorization(ctx, az); err != nil {
		return fail(reasonInternal, challenge.Internal(fmt.Errorf("updating authorization %s: %w", ch.AuthorizationID, err)))
	}
	// Mutate the caller's challenge too: step-ca renders it as the answer.
	ch.Status = acme.StatusValid
	ch.Error = nil
	ch.ValidatedAt = rec.ValidatedAt.Format(time.RFC3339)
	ch.PayloadFormat = challenge.Format
	if err := v.db.UpdateChallenge(ctx, ch); err != nil {
		ch.Status, ch.ValidatedAt = acme.StatusPending, ""
		return fail(reasonInternal, challenge.Internal(fmt.Errorf("updating challenge %s: %w", ch.ID, err)))
	}
	return nil
}

// toACMEError turns a problem into step-ca's error type; a rejected
// identifier carries the identifier in a subproblem (RFC 8555 §6.7.1).
func toACMEError(p *challenge.Problem, identifier string) *acme.Error {
	switch p.Type {
	case challenge.RejectedIdentifier:
		e := acme.NewDetailedError(acme.ErrorRejectedIdentifierType, "%s", p.Detail)
		return e.AddSubproblems(acme.NewSubproblemWithIdentifier(acme.ErrorRejectedIdentifierType,
			acme.Identifier{Type: acme.PermanentIdentifier, Value: identifier}, "%s", p.Detail))
	case challenge.BadAttestationStatement:
		return acme.NewDetailedError(acme.ErrorBadAttestationStatementType, "%s", p.Detail)
	default:
		e := acme.NewError(acme.ErrorServerInternalType, "%s", p.Detail)
		e.Detail = p.Detail
		return e
	}
}
