package adversarial_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/veraison/ear"
	xacme "golang.org/x/crypto/acme"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/tests/internal/harness"
)

// earMITM sits between the CA and attest-acme's real verifier service and
// rewrites the attestation result of the sessions an attack names by their
// nonce: a verifier (or a network position) that answers what the attacker
// wants. The CA is configured as for any remote verifier: type "service",
// the real EAR key pinned.
type earMITM struct {
	mu      sync.Mutex
	plans   map[string]rewrite // by hex nonce
	genuine [][]byte           // every EAR the real verifier signed, in order
}

// rewrite says what to answer instead of the real session.
type rewrite struct {
	// result replaces the session's EAR.
	result func(genuine []byte) []byte
	// body, if set, replaces the whole answer (with 200 OK).
	body []byte
}

// plan registers rw for the session whose nonce is n.
func (m *earMITM) plan(n []byte, rw rewrite) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.plans[hex.EncodeToString(n)] = rw
}

func (m *earMITM) forget(n []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.plans, hex.EncodeToString(n))
}

// firstGenuine returns the first EAR the real verifier signed.
func (m *earMITM) firstGenuine() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.genuine) == 0 {
		return nil
	}
	return m.genuine[0]
}

// wrap is the man in the middle around the service's handler: evidence
// POSTs go to the real service; the session it answers with is rewritten
// when a plan names its nonce.
func (m *earMITM) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/challenge-response/v1/session/") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var sess map[string]json.RawMessage
		var nonce []byte
		var result string
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &sess) != nil ||
			json.Unmarshal(sess["nonce"], &nonce) != nil || json.Unmarshal(sess["result"], &result) != nil {
			copyResponse(w, rec.Code, rec.Header(), rec.Body.Bytes())
			return
		}
		m.mu.Lock()
		m.genuine = append(m.genuine, []byte(result))
		rw, ok := m.plans[hex.EncodeToString(nonce)]
		m.mu.Unlock()
		switch {
		case !ok:
			copyResponse(w, rec.Code, rec.Header(), rec.Body.Bytes())
		case rw.body != nil:
			copyResponse(w, http.StatusOK, rec.Header(), rw.body)
		default:
			forged, err := json.Marshal(string(rw.result([]byte(result))))
			if err != nil {
				panic(err)
			}
			sess["result"] = forged
			b, err := json.Marshal(sess)
			if err != nil {
				panic(err)
			}
			copyResponse(w, http.StatusOK, rec.Header(), b)
		}
	})
}

func copyResponse(w http.ResponseWriter, code int, h http.Header, body []byte) {
	for k, v := range h {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(code)
	w.Write(body)
}

// newRemoteEnv starts the remote group's CA: caplugin's "service" verifier
// pointed at the real verifier service (the development policy, its EAR key
// pinned) through an earMITM.
func newRemoteEnv(t *testing.T) *env {
	t.Helper()
	m := &earMITM{plans: map[string]rewrite{}}
	var earKey *ecdsa.PrivateKey
	ca := harness.StartT(t, harness.Options{Configure: func(s *harness.Setup) error {
		svc, err := harness.ServeDevVerifier(s.Dir, m.wrap)
		if err != nil {
			return err
		}
		t.Cleanup(svc.Close)
		harness.UseRemoteVerifier(s, caplugin.VerifierService, svc.URL, s.EARSigningKeyPath(), 5*time.Second)
		earKey, err = harness.EARSigningKey(s.Dir)
		return err
	}})
	return &env{ca: ca, honest: newSNP(t, sim.SNPOptions{}), mitm: m, earKey: earKey}
}

// TestAttacksRemoteVerifier runs the attacks on the attestation result: a
// remote verifier, or whoever sits on the way to it, answers with an EAR
// the attacker chose. Forgeries with the verifier's real key show that the
// CA checks the result itself (nonce, age, key, status, workload) rather
// than trusting the verifier's word.
func TestAttacksRemoteVerifier(t *testing.T) {
	e := newRemoteEnv(t)
	honestControl(t, e.withAccounts(t, testContext(t)), "vm-control-1")
	run(t, e, remoteAttacks())
	honestControl(t, e.withAccounts(t, testContext(t)), "vm-control-2")
	checkNothingIssued(t, e.ca, 2)
}

// remoteAttacks are the attacks of TestAttacksRemoteVerifier.
func remoteAttacks() []attack {
	const (
		checkSig = "verifier/ear.go Checker.check (jws.Verify, ES256 and the pinned key fixed by the CA)"
		check    = "verifier/ear.go Checker.check"
		checkKey = "verifier/ear.go Checker.Check"
		client   = "verifier/client.go Client.Appraise → caplugin/validate.go validator.appraise (retryable)"
	)
	return []attack{
		{
			name: "EAR signed with another key",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				return signES256(t, earPayload(t, genuine), newKey(t), nil)
			}),
			problem: badAttestation, detail: "EAR: signature", stoppedBy: checkSig,
		},
		{
			name: "EAR with alg none",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				tok, err := jws.Sign(earPayload(t, genuine), jws.WithInsecureNoSignature())
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}),
			problem: badAttestation, detail: "EAR: signature", stoppedBy: checkSig,
		},
		{
			name: "EAR signed HS256 with the pinned public key as the secret",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				der, err := x509.MarshalPKIXPublicKey(&e.earKey.PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
				tok, err := jws.Sign(earPayload(t, genuine), jws.WithKey(jwa.HS256(), secret))
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}),
			problem: badAttestation, detail: "EAR: signature", stoppedBy: checkSig,
		},
		{
			name: "EAR signed by a key it carries in its JWS header (jwk)",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				k := newKey(t)
				j, err := jwk.Import(&k.PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				h := jws.NewHeaders()
				if err := h.Set(jws.JWKKey, j); err != nil {
					t.Fatal(err)
				}
				return signES256(t, earPayload(t, genuine), k, h)
			}),
			problem: badAttestation, detail: "EAR: signature", stoppedBy: checkSig,
		},
		{
			name: "EAR replayed from an old session (another nonce)",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				old := e.mitm.firstGenuine()
				if old == nil || bytes.Equal(old, genuine) {
					t.Fatal("no earlier EAR to replay")
				}
				return old
			}),
			problem: badAttestation, detail: "EAR: eat_nonce is not the nonce of this challenge", stoppedBy: check + " (eat_nonce = N)",
		},
		{
			name: "EAR replayed 10 minutes late (stale iat)",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				return editEAR(t, e, genuine, func(ar *ear.AttestationResult) {
					iat := time.Now().Add(-10 * time.Minute).Unix()
					ar.IssuedAt = &iat
				})
			}),
			problem: badAttestation, detail: "is more than 5m0s old", stoppedBy: check + " (iat within 5 minutes)",
		},
		{
			name: "EAR issued 10 minutes in the future",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				return editEAR(t, e, genuine, func(ar *ear.AttestationResult) {
					iat := time.Now().Add(10 * time.Minute).Unix()
					ar.IssuedAt = &iat
				})
			}),
			problem: badAttestation, detail: "is in the future", stoppedBy: check + " (iat at most 30 s ahead)",
		},
		{
			name: "EAR naming another key (akpub)",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				return editEAR(t, e, genuine, func(ar *ear.AttestationResult) {
					if err := platformSubmod(t, ar).SetKeyAttestation(newKey(t).Public()); err != nil {
						t.Fatal(err)
					}
				})
			}),
			problem: badAttestation, detail: "EAR: akpub is not the key named in the kc", stoppedBy: checkKey + " (akpub = kc cnf)",
		},
		{
			name: "EAR without akpub",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				return editEAR(t, e, genuine, func(ar *ear.AttestationResult) {
					platformSubmod(t, ar).VeraisonKeyAttestation = nil
				})
			}),
			problem: badAttestation, detail: "no submod carries the attested key", stoppedBy: checkKey,
		},
		{
			name: "EAR contraindicated, still naming the key and the workload",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				return editEAR(t, e, genuine, func(ar *ear.AttestationResult) {
					s := ear.TrustTierContraindicated
					platformSubmod(t, ar).Status = &s
				})
			}),
			problem: badAttestation, detail: `status is contraindicated`, stoppedBy: check + " (status in acceptStatuses)",
		},
		{
			name: "EAR affirming but naming no workload",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				return editEAR(t, e, genuine, func(ar *ear.AttestationResult) {
					platformSubmod(t, ar).VeraisonPolicyClaims = nil
				})
			}),
			problem: badAttestation, detail: "names no workload", stoppedBy: "caplugin/validate.go validator.run",
		},
		{
			name: "EAR affirming a workload that has no issuance rule",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				return editEAR(t, e, genuine, func(ar *ear.AttestationResult) {
					platformSubmod(t, ar).VeraisonPolicyClaims = &map[string]any{"workload": "root-of-all"}
				})
			}),
			problem: rejectedIdentifier, detail: `workload "root-of-all" has no issuance rule`, stoppedBy: "caplugin/policy.go IssuancePolicy.AllowsIdentifier",
		},
		{
			name: "EAR with a second submod carrying another key",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				return editEAR(t, e, genuine, func(ar *ear.AttestationResult) {
					p := platformSubmod(t, ar)
					s := ear.TrustTierAffirming
					extra := &ear.Appraisal{Status: &s, TrustVector: p.TrustVector}
					if err := extra.SetKeyAttestation(newKey(t).Public()); err != nil {
						t.Fatal(err)
					}
					ar.Submods["zz-extra"] = extra
				})
			}),
			problem: badAttestation, detail: "both carry a key", stoppedBy: check + " (one submod with akpub)",
		},
		{
			name: "verifier answering garbage",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				e.mitm.plan(nonceOf(t, o), rewrite{body: []byte("<html>not a session</html>")})
				return honestAnswer(t, ctx, o, e.honest).Payload
			},
			then:    retryHonestly,
			problem: serverInternal, detail: "could not be reached or answered nonsense; the challenge is still pending, retry it", stoppedBy: client,
		},
		{
			name: "EAR over 32 KiB",
			payload: forgeEAR(func(t *testing.T, e *env, genuine []byte) []byte {
				return append(genuine, bytes.Repeat([]byte("A"), 33<<10)...)
			}),
			then:    retryHonestly,
			problem: serverInternal, detail: "could not be reached or answered nonsense", stoppedBy: client + " (EAR ≤ 32 KiB)",
		},
	}
}

// retryHonestly shows a serverInternal left the challenge retryable: the
// same challenge, answered again with the verifier behaving, is valid.
func retryHonestly(t *testing.T, ctx context.Context, e *env, o *harness.Order) {
	t.Helper()
	e.mitm.forget(nonceOf(t, o))
	ch, err := o.Post(ctx, honestAnswer(t, ctx, o, e.honest).Payload)
	if err != nil || ch.Status != xacme.StatusValid {
		t.Fatalf("retry: %v, %+v; want valid", err, ch)
	}
}

// forgeEAR is an honest answer whose session result the man in the middle
// replaces with forge(genuine EAR).
func forgeEAR(forge func(t *testing.T, e *env, genuine []byte) []byte) func(*testing.T, context.Context, *env, *harness.Order) []byte {
	return func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
		e.mitm.plan(nonceOf(t, o), rewrite{result: func(genuine []byte) []byte { return forge(t, e, genuine) }})
		return honestAnswer(t, ctx, o, e.honest).Payload
	}
}

// earPayload returns the claims of a JWS without verifying it.
func earPayload(t *testing.T, tok []byte) []byte {
	t.Helper()
	m, err := jws.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	return m.Payload()
}

// signES256 signs payload with key, with extra protected headers h.
func signES256(t *testing.T, payload []byte, key *ecdsa.PrivateKey, h jws.Headers) []byte {
	t.Helper()
	var opts []jws.WithKeySuboption
	if h != nil {
		opts = append(opts, jws.WithProtectedHeaders(h))
	}
	tok, err := jws.Sign(payload, jws.WithKey(jwa.ES256(), key, opts...))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// editEAR changes the claims of a genuine EAR and signs the result with the
// verifier's real key.
func editEAR(t *testing.T, e *env, genuine []byte, change func(*ear.AttestationResult)) []byte {
	t.Helper()
	var ar ear.AttestationResult
	if err := ar.UnmarshalJSON(earPayload(t, genuine)); err != nil {
		t.Fatal(err)
	}
	change(&ar)
	p, err := ar.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return signES256(t, p, e.earKey, nil)
}

// platformSubmod is the one submod the verifier writes.
func platformSubmod(t *testing.T, ar *ear.AttestationResult) *ear.Appraisal {
	t.Helper()
	if len(ar.Submods) != 1 {
		t.Fatalf("EAR has %d submods, want 1", len(ar.Submods))
	}
	for _, a := range ar.Submods {
		return a
	}
	return nil
}
