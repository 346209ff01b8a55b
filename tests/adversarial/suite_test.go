package adversarial_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/tests/internal/harness"
)

// Short names of the ACME problem types, as the README writes them.
const (
	badAttestation     = harness.ProblemBadAttestation
	rejectedIdentifier = harness.ProblemRejectedIdentifier
	serverInternal     = harness.ProblemServerInternal
	unauthorized       = harness.ProblemUnauthorized
	orderNotReady      = harness.ProblemOrderNotReady
	malformed          = harness.ProblemMalformed
)

// Where an attack is stopped at the earliest: at the challenge (the answer
// is refused) or at finalize (the challenge was honestly valid; the CSR is
// refused).
type stage int

const (
	atChallenge stage = iota
	atFinalize
)

// attack is one adversarial case.
type attack struct {
	// name says what the attacker does; it is the subtest's name and the
	// README row.
	name string
	// id is the permanent-identifier ordered; "" means "vm-" + a fresh suffix.
	id string
	// extra identifiers in the same order.
	extra []xacme.AuthzID
	// stage is where the attack is refused.
	stage stage
	// payload builds the attacker's challenge answer for o (atChallenge).
	payload func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte
	// finalize runs a finalize-stage attack on o, whose challenge is valid,
	// and returns the finalize error (atFinalize).
	finalize func(t *testing.T, ctx context.Context, e *env, o *harness.Order) error
	// problem and detail are what the client must get: the ACME problem
	// type and a substring of its detail naming the check.
	problem, detail string
	// stoppedBy names the check that stops it: file and function.
	stoppedBy string
	// mallory says the attack's order is the other account's.
	mallory bool
	// unanswered leaves a finalize-stage attack's challenge unanswered.
	unanswered bool
	// then, if set, runs after a refused challenge was checked (to show a
	// serverInternal left it retryable).
	then func(t *testing.T, ctx context.Context, e *env, o *harness.Order)
	// serial attacks do not run in parallel with the others (they change
	// shared state, such as a TPM's PCRs); they run first, one at a time.
	serial bool
}

// env is what an attack works with: the group's CA and honest platform,
// and two accounts (withAccounts).
type env struct {
	ca *harness.CA
	// alice is the account most attacks use; mallory is another account.
	alice, mallory *harness.Account
	// honest is an honest attester the CA's policy accepts.
	honest evidence.Attester
	// mitm and earKey are the remote group's man in the middle and the
	// verifier's real EAR signing key.
	mitm   *earMITM
	earKey *ecdsa.PrivateKey
	// tpm is the TPM group's simulator and second AK.
	tpm *tpmEnv
}

// withAccounts returns a copy of e with two new accounts.
func (e *env) withAccounts(t *testing.T, ctx context.Context) *env {
	t.Helper()
	c := *e
	var err error
	if c.alice, err = e.ca.NewAccount(ctx); err != nil {
		t.Fatal(err)
	}
	if c.mallory, err = e.ca.NewAccount(ctx); err != nil {
		t.Fatal(err)
	}
	return &c
}

// testContext bounds a test.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// run runs every attack against e's CA as a subtest, each with accounts of
// its own, and checks its outcome. Serial attacks run first, one at a time;
// the others then run in parallel.
func run(t *testing.T, e *env, attacks []attack) {
	t.Helper()
	t.Run("attacks", func(t *testing.T) {
		for i, a := range attacks {
			t.Run(a.name, func(t *testing.T) {
				if !a.serial {
					t.Parallel()
				}
				ctx := testContext(t)
				// Accounts of their own: step-ca v0.30.2 answers serverInternal
				// at times when requests on one account's orders overlap.
				e := e.withAccounts(t, ctx)
				id := a.id
				if id == "" {
					id = fmt.Sprintf("vm-%d", i)
				}
				acct := e.alice
				if a.mallory {
					acct = e.mallory
				}
				o, err := acct.NewOrder(ctx, id, a.extra...)
				if err != nil {
					t.Fatal(err)
				}
				switch a.stage {
				case atChallenge:
					payload := a.payload(t, ctx, e, o)
					ch, err := o.Post(ctx, payload)
					checkChallengeRefused(t, ctx, o, ch, err, a.problem, a.detail)
					checkNoCertificate(t, ctx, o, o.Key, newKey(t))
					if a.then != nil {
						a.then(t, ctx, e, o)
					}
				case atFinalize:
					if !a.unanswered {
						honestValid(t, ctx, e, o)
					}
					err := a.finalize(t, ctx, e, o)
					checkFinalizeRefused(t, ctx, o, err, a.problem, a.detail)
				}
			})
		}
	})
}

// honestValid answers o's challenge honestly (o.Key, e.honest) and requires
// it valid.
func honestValid(t *testing.T, ctx context.Context, e *env, o *harness.Order) {
	t.Helper()
	ans, err := o.Answer(ctx, e.honest)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := o.Post(ctx, ans.Payload)
	if err != nil || ch.Status != xacme.StatusValid {
		t.Fatalf("honest answer: %v, %+v; want valid", err, ch)
	}
}

// checkChallengeRefused checks the CA's answer to an attack at the
// challenge: a retryable serverInternal (the POST fails, the challenge stays
// pending) or an invalid challenge, with problem type typ and a detail
// containing detail, and the stored challenge agrees.
func checkChallengeRefused(t *testing.T, ctx context.Context, o *harness.Order, ch *xacme.Challenge, err error, typ, detail string) {
	t.Helper()
	wantStatus := xacme.StatusInvalid
	var p *xacme.Error
	if typ == serverInternal || typ == malformed {
		// Refused before the challenge was touched (a request too large
		// for the CA to read), or retryable: the challenge stays pending.
		wantStatus = xacme.StatusPending
		if p = harness.Problem(err); p == nil {
			t.Fatalf("answer: %v, %+v; want a %s problem", err, ch, typ)
		}
	} else {
		if err != nil {
			t.Fatalf("answer: %v; want the challenge answered %s", err, wantStatus)
		}
		if ch.Status != wantStatus {
			t.Fatalf("challenge is %s (error %v), want %s", ch.Status, ch.Error, wantStatus)
		}
		p = harness.ChallengeProblem(ch)
	}
	if p == nil || p.ProblemType != typ || !strings.Contains(p.Detail, detail) {
		t.Fatalf("problem %v, want %s with detail containing %q", describe(p), typ, detail)
	}
	t.Logf("refused: %s", describe(p))
	stored, err := o.ChallengeState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != wantStatus {
		t.Fatalf("stored challenge is %s, want %s", stored.Status, wantStatus)
	}
}

// checkFinalizeRefused checks a refused finalize: problem typ with detail,
// and the order still without a certificate.
func checkFinalizeRefused(t *testing.T, ctx context.Context, o *harness.Order, err error, typ, detail string) {
	t.Helper()
	if err == nil {
		t.Fatal("finalize issued a certificate")
	}
	p := harness.Problem(err)
	if p == nil || p.ProblemType != typ || !strings.Contains(p.Detail, detail) {
		t.Fatalf("finalize: %v, want %s with detail containing %q", err, typ, detail)
	}
	checkOrderHasNoCertificate(t, ctx, o)
}

// checkNoCertificate tries to finalize o, whose challenge the CA refused,
// with each key and requires every attempt refused as orderNotReady (the
// authorization is not valid) and the order left without a certificate.
func checkNoCertificate(t *testing.T, ctx context.Context, o *harness.Order, keys ...crypto.Signer) {
	t.Helper()
	for i, k := range keys {
		chain, err := o.Finalize(ctx, k)
		if err == nil {
			t.Fatalf("finalize with key %d issued a certificate (serial %s)", i, chain[0].SerialNumber)
		}
		if p := harness.Problem(err); p == nil || p.ProblemType != orderNotReady {
			t.Fatalf("finalize with key %d: %v, want %s", i, err, orderNotReady)
		}
	}
	checkOrderHasNoCertificate(t, ctx, o)
}

func checkOrderHasNoCertificate(t *testing.T, ctx context.Context, o *harness.Order) {
	t.Helper()
	got, err := o.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status == xacme.StatusValid || got.CertURL != "" {
		t.Fatalf("order is %s with certificate %q, want no certificate", got.Status, got.CertURL)
	}
}

// checkNothingIssued is run when a group's CA is done: its enforcer signed
// want attested certificates (the groups' honest controls), and after Close
// step-ca's database holds want certificates.
func checkNothingIssued(t *testing.T, ca *harness.CA, want int) {
	t.Helper()
	n, err := ca.AttestedCertificates()
	if err != nil {
		t.Fatal(err)
	}
	if int(n) != want {
		t.Errorf("the CA signed %v attested certificates, want %d (the honest controls)", n, want)
	}
	refused, err := ca.Counter(harness.MetricCertificates, map[string]string{"result": "refused"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Close(); err != nil {
		t.Fatal(err)
	}
	stored, err := ca.StoredCertificates()
	if err != nil {
		t.Fatal(err)
	}
	if stored != want {
		t.Errorf("step-ca's database holds %d certificates, want %d (the honest controls)", stored, want)
	}
	t.Logf("certificates: %v attested, %v refused by the enforcer, %d stored", n, refused, stored)
}

func describe(p *xacme.Error) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprintf("%s %q", p.ProblemType, p.Detail)
}

// newKey returns a fresh P-256 key.
func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
