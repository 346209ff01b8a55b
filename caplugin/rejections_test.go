package caplugin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-sev-guest/abi"
	"github.com/smallstep/certificates/authority/config"
	"github.com/smallstep/certificates/db"
	xacme "golang.org/x/crypto/acme"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/verifier"
)

const (
	urnBadAttestation     = "urn:ietf:params:acme:error:badAttestationStatement"
	urnRejectedIdentifier = "urn:ietf:params:acme:error:rejectedIdentifier"
	urnServerInternal     = "urn:ietf:params:acme:error:serverInternal"
	urnUnauthorized       = "urn:ietf:params:acme:error:unauthorized"
	urnOrderNotReady      = "urn:ietf:params:acme:error:orderNotReady"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// wantInvalid checks that a challenge answer ended invalid with problem type
// typ whose detail contains detail.
func wantInvalid(t *testing.T, ch *xacme.Challenge, err error, typ, detail string) {
	t.Helper()
	if err != nil {
		t.Fatalf("accept: %v (want the challenge answered invalid)", err)
	}
	if ch.Status != "invalid" {
		t.Fatalf("challenge status %q, want invalid", ch.Status)
	}
	var pe *xacme.Error
	if e, ok := ch.Error.(*xacme.Error); ok {
		pe = e
	}
	if pe == nil || pe.ProblemType != typ || !strings.Contains(pe.Detail, detail) {
		t.Fatalf("challenge error %v, want %s with detail containing %q", ch.Error, typ, detail)
	}
}

// TestFinalizeRefusesAnotherKey: after a valid challenge, a CSR for a key
// other than the attested one is refused by step-ca's own finalize, and no
// certificate is signed.
func TestFinalizeRefusesAnotherKey(t *testing.T) {
	ctx := testContext(t)
	ca := newTestCA(t, caSetup{})
	cl := ca.client(ctx)
	o := newAttestedOrder(ctx, t, cl, "vm-1")
	ans := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{}), o.chal, o.key.Public())
	if ch, err := accept(ctx, cl, o.chal, ans.Payload); err != nil || ch.Status != "valid" {
		t.Fatalf("accept: %v, %+v", err, ch)
	}
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, err = finalize(ctx, cl, o.order, otherKey)
	if p := problem(t, err); p.ProblemType != urnUnauthorized {
		t.Fatalf("finalize with another key: %v, want %s", err, urnUnauthorized)
	}
	if got, err := cl.GetOrder(ctx, o.order.URI); err != nil || got.Status != "ready" || got.CertURL != "" {
		t.Fatalf("order after the refused finalize: %+v, %v; want still ready, without a certificate", got, err)
	}
	if n := ca.counter("attest_acme_ca_certificates_total", nil); n != 0 {
		t.Fatalf("%v certificates reached signing", n)
	}
	// The attested key still gets its certificate.
	chain, err := finalize(ctx, cl, o.order, o.key)
	if err != nil {
		t.Fatalf("finalize with the attested key: %v", err)
	}
	ca.checkAttestedCertificate(t, chain, ans, o.key, "vm-1", "sev-snp")
}

// TestReplayedBundleIsRejected: a bundle made for one challenge carries
// N = SHA-256(token "." thumbprint); posted to another challenge, or by
// another account, its kc's nonce does not match.
func TestReplayedBundleIsRejected(t *testing.T) {
	ctx := testContext(t)
	ca := newTestCA(t, caSetup{})
	snp := newSNP(t, sim.SNPOptions{})
	alice := ca.client(ctx)
	first := newAttestedOrder(ctx, t, alice, "vm-1")
	ans := answer(ctx, t, alice, snp, first.chal, first.key.Public())
	if ch, err := accept(ctx, alice, first.chal, ans.Payload); err != nil || ch.Status != "valid" {
		t.Fatalf("accept: %v, %+v", err, ch)
	}

	t.Run("to another challenge of the same account", func(t *testing.T) {
		second := newAttestedOrder(ctx, t, alice, "vm-1")
		ch, err := accept(ctx, alice, second.chal, ans.Payload)
		wantInvalid(t, ch, err, urnBadAttestation, "eat_nonce")
	})
	t.Run("to a challenge of another account", func(t *testing.T) {
		mallory := ca.client(ctx)
		theirs := newAttestedOrder(ctx, t, mallory, "vm-1")
		ch, err := accept(ctx, mallory, theirs.chal, ans.Payload)
		wantInvalid(t, ch, err, urnBadAttestation, "eat_nonce")
		_, err = finalizeNow(ctx, mallory, theirs.order, first.key)
		if p := problem(t, err); p.ProblemType != urnOrderNotReady {
			t.Fatalf("finalize with the replayed bundle's key: %v, want %s", err, urnOrderNotReady)
		}
	})
	if got := ca.counter("attest_acme_ca_challenges_total", map[string]string{"result": "invalid", "reason": "bad_payload"}); got != 2 {
		t.Errorf("invalid challenges counted %v, want 2", got)
	}
}

// TestEARSignedByAnotherKeyIsRejected: the real appraiser, signing with a key
// that is not the pinned one, yields an EAR the CA refuses.
func TestEARSignedByAnotherKeyIsRejected(t *testing.T) {
	ctx := testContext(t)
	ca := newTestCA(t, caSetup{verifier: func(t *testing.T, dir string) (verifier.Verifier, *ecdsa.PublicKey) {
		rogue, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pinned, err := verifier.LoadVerificationKey(dir + "/secrets/ear_signing_key.pem")
		if err != nil {
			t.Fatal(err)
		}
		return devAppraiser(t, dir, rogue), pinned
	}})
	cl := ca.client(ctx)
	o := newAttestedOrder(ctx, t, cl, "vm-1")
	ans := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{}), o.chal, o.key.Public())
	ch, err := accept(ctx, cl, o.chal, ans.Payload)
	wantInvalid(t, ch, err, urnBadAttestation, "EAR: signature")
	_, err = finalizeNow(ctx, cl, o.order, o.key)
	if p := problem(t, err); p.ProblemType != urnOrderNotReady {
		t.Fatalf("finalize after the EAR was refused: %v, want %s", err, urnOrderNotReady)
	}
}

// TestBadEvidenceIsBadAttestation: evidence the verifier appraises as
// contraindicated, or refuses outright, invalidates the challenge with a
// detail that names the failed check.
func TestBadEvidenceIsBadAttestation(t *testing.T) {
	ctx := testContext(t)
	t.Run("debug guest", func(t *testing.T) {
		ca := newTestCA(t, caSetup{})
		cl := ca.client(ctx)
		o := newAttestedOrder(ctx, t, cl, "vm-1")
		ans := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{Policy: abi.SnpPolicy{Debug: true, SMT: true}}), o.chal, o.key.Public())
		ch, err := accept(ctx, cl, o.chal, ans.Payload)
		wantInvalid(t, ch, err, urnBadAttestation, "contraindicated")
	})
	t.Run("unknown measurement", func(t *testing.T) {
		ca := newTestCA(t, caSetup{})
		cl := ca.client(ctx)
		o := newAttestedOrder(ctx, t, cl, "vm-1")
		m := make([]byte, 48)
		m[0] = 1
		ans := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{Measurement: m}), o.chal, o.key.Public())
		ch, err := accept(ctx, cl, o.chal, ans.Payload)
		wantInvalid(t, ch, err, urnBadAttestation, "no workload matched")
	})
	t.Run("platform no trusted root vouches for", func(t *testing.T) {
		keys, err := sim.NewSNPKeys()
		if err != nil {
			t.Fatal(err)
		}
		ca := newTestCA(t, caSetup{})
		cl := ca.client(ctx)
		o := newAttestedOrder(ctx, t, cl, "vm-1")
		ans := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{Keys: keys}), o.chal, o.key.Public())
		ch, err := accept(ctx, cl, o.chal, ans.Payload)
		wantInvalid(t, ch, err, urnBadAttestation, "sev-snp")
	})
	t.Run("verifier refuses the evidence", func(t *testing.T) {
		ca := newTestCA(t, caSetup{verifier: func(t *testing.T, dir string) (verifier.Verifier, *ecdsa.PublicKey) {
			a := devAppraiser(t, dir, nil)
			return refusing{}, a.VerificationKey().(*ecdsa.PublicKey)
		}})
		cl := ca.client(ctx)
		o := newAttestedOrder(ctx, t, cl, "vm-1")
		ans := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{}), o.chal, o.key.Public())
		ch, err := accept(ctx, cl, o.chal, ans.Payload)
		wantInvalid(t, ch, err, urnBadAttestation, "verifier: evidence rejected: media type not accepted here")
	})
}

// refusing is a verifier that refuses every piece of evidence.
type refusing struct{}

func (refusing) Appraise(context.Context, evidence.Evidence, []byte) ([]byte, error) {
	return nil, &verifier.RejectedError{Reason: "media type not accepted here"}
}

// TestWorkloadNotAllowedIsRejectedIdentifier: the issuance policy is deny by
// default, for the permanent-identifier and for DNS names in the same order.
func TestWorkloadNotAllowedIsRejectedIdentifier(t *testing.T) {
	ctx := testContext(t)
	ca := newTestCA(t, caSetup{dev: func(d *caplugin.DevSetup) {
		d.PermanentIdentifiers = []string{"demo-*"}
		d.DNSNamesAllowed = []string{"*.demo.localhost"}
	}})
	snp := newSNP(t, sim.SNPOptions{})
	cl := ca.client(ctx)
	for _, tc := range []struct {
		name   string
		id     string
		extra  []xacme.AuthzID
		typ    string
		detail string
	}{
		{"identifier outside the workload's patterns", "prod-1", nil, urnRejectedIdentifier, `workload "demo" may not have permanent-identifier "prod-1"`},
		{"DNS name outside the workload's patterns", "demo-1", []xacme.AuthzID{{Type: "dns", Value: "api.prod.localhost"}}, urnRejectedIdentifier, `may not have DNS name "api.prod.localhost" (in the same order)`},
		{"allowed identifier and DNS name", "demo-2", []xacme.AuthzID{{Type: "dns", Value: "api.demo.localhost"}}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newAttestedOrder(ctx, t, cl, tc.id, tc.extra...)
			ans := answer(ctx, t, cl, snp, o.chal, o.key.Public())
			ch, err := accept(ctx, cl, o.chal, ans.Payload)
			if tc.typ == "" {
				if err != nil || ch.Status != "valid" {
					t.Fatalf("accept: %v, %+v; want valid", err, ch)
				}
				return
			}
			wantInvalid(t, ch, err, tc.typ, tc.detail)
		})
	}
}

// TestVerifierUnavailableIsRetryable: a verifier that is down, slow or
// answers nonsense gives no certificate, a serverInternal problem, a
// challenge still pending, and a log line naming the order, authorization
// and challenge; once the verifier is back, the same challenge succeeds.
func TestVerifierUnavailableIsRetryable(t *testing.T) {
	ctx := testContext(t)
	var svc *gatedService
	ca := newTestCA(t, caSetup{plugin: remoteVerifier(&svc, caplugin.VerifierService, 3*time.Second)})
	cl := ca.client(ctx)
	snp := newSNP(t, sim.SNPOptions{})
	o := newAttestedOrder(ctx, t, cl, "vm-1")
	orderID, azID, chID := o.ids()

	for _, tc := range []struct {
		name   string
		mode   int32
		detail string
	}{
		{"unreachable", serviceDown, "could not be reached or answered nonsense"},
		{"slow", serviceSlow, "did not answer within 3s"},
		{"answering garbage", serviceGarbage, "could not be reached or answered nonsense"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc.mode.Store(tc.mode)
			ans := answer(ctx, t, cl, snp, o.chal, o.key.Public())
			_, err := accept(ctx, cl, o.chal, ans.Payload)
			p := problem(t, err)
			if p.ProblemType != urnServerInternal || !strings.Contains(p.Detail, tc.detail) || !strings.Contains(p.Detail, "retry") {
				t.Fatalf("problem %s %q, want %s saying %q and to retry", p.ProblemType, p.Detail, urnServerInternal, tc.detail)
			}
			if st := challengeStatus(ctx, t, cl, o); st != "pending" {
				t.Fatalf("challenge after the failure is %s, want pending", st)
			}
			if _, ok := ca.logs.logLine("left pending", "order="+orderID, "authorization="+azID, "challenge="+chID); !ok {
				t.Fatalf("no log line with the order, authorization and challenge IDs:\n%s", ca.logs)
			}
		})
	}
	if got := ca.counter("attest_acme_ca_challenges_total", map[string]string{"result": "retryable", "reason": "verifier_unavailable"}); got != 3 {
		t.Errorf("retryable challenges counted %v, want 3", got)
	}
	if got := ca.counter("attest_acme_ca_verifier_duration_seconds", map[string]string{"outcome": "error"}); got != 3 {
		t.Errorf("failed verifier calls observed %v, want 3", got)
	}

	// The verifier is back: the same challenge, answered again, is valid.
	svc.mode.Store(serviceUp)
	ans := answer(ctx, t, cl, snp, o.chal, o.key.Public())
	ch, err := accept(ctx, cl, o.chal, ans.Payload)
	if err != nil || ch.Status != "valid" {
		t.Fatalf("retry: %v, %+v; want valid", err, ch)
	}
	chain, err := finalize(ctx, cl, o.order, o.key)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	ca.checkAttestedCertificate(t, chain, ans, o.key, "vm-1", "sev-snp")
}

// TestVerifierAddressRefusesConnections: a verifier URL where nothing
// listens is serverInternal too, and the challenge stays pending.
func TestVerifierAddressRefusesConnections(t *testing.T) {
	ctx := testContext(t)
	ca := newTestCA(t, caSetup{plugin: func(t *testing.T, dir string, c *caplugin.Config) {
		c.Verifier = caplugin.VerifierConfig{Type: caplugin.VerifierService, URL: "http://127.0.0.1:1",
			EARKey: dir + "/secrets/ear_signing_key.pem", Timeout: caplugin.Duration{Duration: 2 * time.Second}}
	}})
	cl := ca.client(ctx)
	o := newAttestedOrder(ctx, t, cl, "vm-1")
	ans := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{}), o.chal, o.key.Public())
	_, err := accept(ctx, cl, o.chal, ans.Payload)
	if p := problem(t, err); p.ProblemType != urnServerInternal {
		t.Fatalf("problem %s, want %s", p.ProblemType, urnServerInternal)
	}
	if st := challengeStatus(ctx, t, cl, o); st != "pending" {
		t.Fatalf("challenge is %s, want pending", st)
	}
}

// TestRestartBetweenChallengeAndFinalize: the CA keeps nothing in memory
// between the challenge and finalize; a new CA process on the same database
// finalizes, with the stored EAR, without calling the verifier again. Run on
// bbolt (the development setup's) and badger, step-ca's embedded databases.
func TestRestartBetweenChallengeAndFinalize(t *testing.T) {
	for _, backend := range []string{"bbolt", "badgerv2"} {
		t.Run(backend, func(t *testing.T) {
			ctx := testContext(t)
			ca := newTestCA(t, caSetup{ca: func(c *config.Config) {
				if backend != "bbolt" {
					c.DB = &db.Config{Type: backend, DataSource: filepath.Join(filepath.Dir(c.DB.DataSource), backend)}
				}
			}})
			cl := ca.client(ctx)
			o := newAttestedOrder(ctx, t, cl, "vm-1")
			ans := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{}), o.chal, o.key.Public())
			if ch, err := accept(ctx, cl, o.chal, ans.Payload); err != nil || ch.Status != "valid" {
				t.Fatalf("accept: %v, %+v", err, ch)
			}

			ca.restart()
			cl.HTTPClient.CloseIdleConnections()

			chain, err := finalize(ctx, cl, o.order, o.key)
			if err != nil {
				t.Fatalf("finalize after the restart: %v", err)
			}
			ca.checkAttestedCertificate(t, chain, ans, o.key, "vm-1", "sev-snp")
			if got := ca.counter("attest_acme_ca_verifier_duration_seconds", nil); got != 0 {
				t.Errorf("the restarted CA called the verifier %v times", got)
			}
			if got := ca.counter("attest_acme_ca_certificates_total", map[string]string{"result": "extended"}); got != 1 {
				t.Errorf("the restarted CA extended %v certificates, want 1", got)
			}
		})
	}
}

// TestUnknownFormatKeepsStepCAError: an attestation object in a format
// neither step-ca nor the plugin knows gets step-ca's own answer, and the
// plugin does not touch it.
func TestUnknownFormatKeepsStepCAError(t *testing.T) {
	ctx := testContext(t)
	ca := newTestCA(t, caSetup{})
	cl := ca.client(ctx)
	o := newAttestedOrder(ctx, t, cl, "vm-1")
	attObj, err := cbor.Marshal(map[string]any{"fmt": "cmw2", "attStmt": map[string]any{"cmw": []byte{1, 2, 3}}})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(map[string]string{"attObj": base64.RawURLEncoding.EncodeToString(attObj)})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := accept(ctx, cl, o.chal, payload)
	wantInvalid(t, ch, err, urnBadAttestation, `unsupported attestation object format "cmw2"`)
	if got := ca.counter("attest_acme_ca_challenges_total", nil); got != 0 {
		t.Errorf("the plugin counted %v challenges for a format it does not own", got)
	}
}

// challengeStatus reads the device-attest-01 challenge's status through its
// authorization. (A POST-as-GET to a pending device-attest-01 challenge URL
// makes step-ca v0.30.2 validate an empty payload and answer 500.)
func challengeStatus(ctx context.Context, t *testing.T, cl *xacme.Client, o *attestedOrder) string {
	t.Helper()
	az, err := cl.GetAuthorization(ctx, o.authzURL)
	if err != nil {
		t.Fatalf("authorization: %v", err)
	}
	for _, ch := range az.Challenges {
		if ch.URI == o.chal.URI {
			return ch.Status
		}
	}
	t.Fatalf("authorization %s lost its challenge", o.authzURL)
	return ""
}

// TestFinalizeFailsClosedWhenThePolicyChanged: the enforcer re-checks the
// issuance policy at finalize; a CA restarted with a policy that no longer
// allows the identifier signs nothing for the earlier, valid challenge.
func TestFinalizeFailsClosedWhenThePolicyChanged(t *testing.T) {
	ctx := testContext(t)
	tighten := false
	ca := newTestCA(t, caSetup{plugin: func(_ *testing.T, _ string, c *caplugin.Config) {
		if tighten {
			c.Issuance[0].PermanentIdentifiers = []string{"prod-*"}
		}
	}})
	cl := ca.client(ctx)
	o := newAttestedOrder(ctx, t, cl, "vm-1")
	ans := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{}), o.chal, o.key.Public())
	if ch, err := accept(ctx, cl, o.chal, ans.Payload); err != nil || ch.Status != "valid" {
		t.Fatalf("accept: %v, %+v", err, ch)
	}
	tighten = true
	ca.restart()
	cl.HTTPClient.CloseIdleConnections()

	_, err := finalize(ctx, cl, o.order, o.key)
	// step-ca reports any refusal by a certificate enforcer as an internal
	// error of the finalize request; the reason is in the CA's log.
	if p := problem(t, err); p.ProblemType != urnServerInternal {
		t.Fatalf("finalize: %v, want %s", err, urnServerInternal)
	}
	if _, ok := ca.logs.logLine("attested certificate refused", `may not have permanent-identifier \"vm-1\"`); !ok {
		t.Fatalf("no log line says why the certificate was refused:\n%s", ca.logs)
	}
	if got := ca.counter("attest_acme_ca_certificates_total", map[string]string{"result": "refused"}); got != 1 {
		t.Fatalf("refused certificates counted %v, want 1", got)
	}
}
