package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/veraison/apiclient/verification"
	"github.com/veraison/ear"
)

func newTestService(t testing.TB, f *fixture, mod func(*ServiceConfig)) *httptest.Server {
	t.Helper()
	cfg := ServiceConfig{Verifier: f.app, MediaTypes: f.app.MediaTypes(), Key: f.signer.Public(), Now: func() time.Time { return f.now }}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// Our remote client against our service: the CA's path to a remote verifier.
func TestClientAgainstService(t *testing.T) {
	f := newFixture(t, nil)
	srv := newTestService(t, f, nil)
	c, err := NewClient(ClientConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	const ka = "token.thumbprint"
	ans, key := answer(t, goodSNP(t, nil), ka, f.now)
	tok, err := c.Appraise(context.Background(), evidence.Evidence{MediaType: evidence.MediaTypeBundle, Data: ans.Bundle}, nonceOf(ka))
	if err != nil {
		t.Fatal(err)
	}
	r, err := (&Checker{Key: f.signer.Public(), Now: func() time.Time { return f.now }}).Check(tok, nonceOf(ka), key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if r.Workload != "snp-web" || r.Platform != PlatformSEVSNP {
		t.Fatalf("EAR says %s %q", r.Platform, r.Workload)
	}
}

// snpBuilder is an apiclient EvidenceBuilder that attests with the session's
// nonce as D: bare SEV-SNP evidence, as a Veraison client would send it.
type snpBuilder struct{ a evidence.Attester }

func (b snpBuilder) BuildEvidence(nonce []byte, accept []string) ([]byte, string, error) {
	ev, err := b.a.Attest(context.Background(), nonce)
	if err != nil {
		return nil, "", err
	}
	for _, mt := range accept {
		if mt == ev.MediaType {
			return ev.Data, ev.MediaType, nil
		}
	}
	return nil, "", fmt.Errorf("the service does not accept %s", ev.MediaType)
}

// Interop (b): veraison/apiclient's own challenge-response run against our
// service returns an EAR that verifies.
func TestApiclientRunAgainstService(t *testing.T) {
	f := newFixture(t, nil)
	srv := newTestService(t, f, nil)
	cfg := verification.ChallengeResponseConfig{
		NonceSz:         64,
		NewSessionURI:   srv.URL + PathNewSession,
		EvidenceBuilder: snpBuilder{goodSNP(t, nil)},
		DeleteSession:   true,
	}
	res, err := cfg.Run()
	if err != nil {
		t.Fatal(err)
	}
	var tok string
	if err := json.Unmarshal(res, &tok); err != nil {
		t.Fatal(err)
	}
	var ar ear.AttestationResult
	if err := ar.Verify([]byte(tok), jwa.ES256(), f.signer.Public()); err != nil {
		t.Fatalf("veraison/ear does not verify our EAR: %v", err)
	}
	if s := *ar.Submods[PlatformSEVSNP].Status; s != ear.TrustTierAffirming {
		t.Fatalf("status %s", s)
	}

	// Discovery through apiclient gives the key our Checker pins.
	var dc verification.DiscoveryConfig
	if err := dc.SetDiscoveryURI(srv.URL + PathWellKnown); err != nil {
		t.Fatal(err)
	}
	d, err := dc.Run()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseVerificationKey(d.PublicKey)
	if err != nil || !k.Equal(f.signer.Public()) {
		t.Fatalf("well-known key %v does not equal the signing key", err)
	}
}

func TestServiceRejects(t *testing.T) {
	f := newFixture(t, nil)
	srv := newTestService(t, f, func(c *ServiceConfig) { c.MaxSessions = 2; c.Lifetime = time.Minute })
	newSession := func(q string) *http.Response {
		res, err := http.Post(srv.URL+PathNewSession+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	post := func(uri, ct string, body []byte) *http.Response {
		res, err := http.Post(srv.URL+uri, ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	detail := func(res *http.Response) string {
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}

	for _, c := range []struct{ q, want string }{
		{"?nonce=AQ", "nonce"},
		{"?nonce=%%%", "query"},
		{"?nonceSize=4", "outside 8..64"},
		{"?nonceSize=x", "not a number"},
		{"?nonce=AAAAAAAAAAA&nonceSize=8", "not both"},
	} {
		if res := newSession(c.q); res.StatusCode != http.StatusBadRequest || !strings.Contains(detail(res), c.want) {
			t.Errorf("newSession%s: %s, want 400 naming %q", c.q, res.Status, c.want)
		}
	}

	a := newSession("?nonceSize=64")
	if a.StatusCode != http.StatusCreated {
		t.Fatalf("newSession: %s", a.Status)
	}
	loc := a.Header.Get("Location")
	if res := post(loc, "text/plain", []byte("x")); res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("unknown media type: %s", res.Status)
	}
	if res := post(loc, evidence.MediaTypeTSMReport, make([]byte, maxEvidenceBody+1)); res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized evidence: %s", res.Status)
	}
	if res := post(loc+"x", evidence.MediaTypeTSMReport, []byte{0xa0}); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown session: %s", res.Status)
	}
	if res := post(loc, evidence.MediaTypeTSMReport, []byte{0xa0}); res.StatusCode != http.StatusOK {
		t.Errorf("garbage evidence should still get a (contraindicated) result: %s %s", res.Status, detail(res))
	}
	if res := post(loc, evidence.MediaTypeTSMReport, []byte{0xa0}); res.StatusCode != http.StatusConflict {
		t.Errorf("second evidence for a session: %s", res.Status)
	}

	// The cap counts sessions waiting for evidence: a is finished, so two
	// more fit and the next is refused.
	for i := range 2 {
		if res := newSession(""); res.StatusCode != http.StatusCreated {
			t.Fatalf("waiting session %d: %s", i+1, res.Status)
		}
	}
	if res := newSession(""); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("over the cap: %s", res.Status)
	}
	// Expiry frees the sessions.
	f.now = f.now.Add(2 * time.Minute)
	if res := newSession(""); res.StatusCode != http.StatusCreated {
		t.Fatalf("after expiry: %s", res.Status)
	}
	if res, _ := http.Get(srv.URL + loc); res.StatusCode != http.StatusNotFound {
		t.Fatalf("expired session still served: %s", res.Status)
	}
}

// TestServiceKeepsBoundedFinishedSessions: a client that never DELETEs
// cannot fill the service: finished sessions beyond the cap are dropped,
// oldest first.
func TestServiceKeepsBoundedFinishedSessions(t *testing.T) {
	f := newFixture(t, nil)
	srv := newTestService(t, f, func(c *ServiceConfig) { c.MaxSessions = 2 })
	var locs []string
	for i := range 5 {
		res, err := http.Post(srv.URL+PathNewSession+"?nonceSize=64", "", nil)
		if err != nil || res.StatusCode != http.StatusCreated {
			t.Fatalf("session %d: %v %v", i, err, res.Status)
		}
		res.Body.Close()
		loc := res.Header.Get("Location")
		res, err = http.Post(srv.URL+loc, evidence.MediaTypeTSMReport, bytes.NewReader([]byte{0xa0}))
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("evidence %d: %v %v", i, err, res.Status)
		}
		res.Body.Close()
		locs = append(locs, loc)
	}
	for i, loc := range locs {
		res, err := http.Get(srv.URL + loc)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		want := http.StatusNotFound
		if i >= len(locs)-2 {
			want = http.StatusOK
		}
		if res.StatusCode != want {
			t.Errorf("finished session %d: %s, want %d", i, res.Status, want)
		}
	}
}
