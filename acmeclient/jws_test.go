package acmeclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// fakeCA answers newNonce and scripted signed POSTs, and checks every JWS
// it gets: signature under the account key, kid, url, a nonce it issued and
// has not seen used.
type fakeCA struct {
	t      *testing.T
	srv    *httptest.Server
	key    *ecdsa.PrivateKey
	kid    string
	mu     sync.Mutex
	issued map[string]bool
	next   int
	// answers are served in turn for POSTs to /obj; each gets the payload.
	answers []func(w http.ResponseWriter, payload []byte)
	posts   int
	// payloads received
	payloads [][]byte
}

func newFakeCA(t *testing.T) *fakeCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCA{t: t, key: key, issued: map[string]bool{}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	f.kid = f.srv.URL + "/account/1"
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCA) nonce() string {
	f.next++
	n := fmt.Sprintf("nonce%d", f.next)
	f.issued[n] = true
	return n
}

func (f *fakeCA) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Replay-Nonce", f.nonce())
	if r.URL.Path == "/nonce" {
		w.WriteHeader(http.StatusOK)
		return
	}
	body, _ := io.ReadAll(r.Body)
	jws, err := jose.ParseSigned(string(body), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		f.t.Errorf("the request is not a JWS: %v", err)
		http.Error(w, "bad", 400)
		return
	}
	h := jws.Signatures[0].Protected
	if h.KeyID != f.kid || h.ExtraHeaders["url"] != f.srv.URL+r.URL.Path || !f.issued[h.Nonce] {
		f.t.Errorf("protected header kid %q url %v nonce %q", h.KeyID, h.ExtraHeaders["url"], h.Nonce)
	}
	delete(f.issued, h.Nonce)
	payload, err := jws.Verify(&f.key.PublicKey)
	if err != nil {
		f.t.Errorf("JWS signature: %v", err)
	}
	f.payloads = append(f.payloads, payload)
	if f.posts >= len(f.answers) {
		f.t.Errorf("POST %d: no answer scripted", f.posts+1)
		http.Error(w, "unscripted", 500)
		return
	}
	a := f.answers[f.posts]
	f.posts++
	a(w, payload)
}

func (f *fakeCA) poster() *poster {
	return &poster{hc: httpClientFor(context.Background(), f.srv.Client()), ua: "test", key: f.key, kid: f.kid, nonceURL: f.srv.URL + "/nonce"}
}

func problemAnswer(status int, typ, detail string) func(http.ResponseWriter, []byte) {
	return func(w http.ResponseWriter, _ []byte) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"type":%q,"detail":%q,"subproblems":[{"type":"urn:ietf:params:acme:error:malformed","detail":"sub","identifier":{"type":"dns","value":"a.example"}}]}`, typ, detail)
	}
}

func jsonAnswer(status int, header map[string]string, body string) func(http.ResponseWriter, []byte) {
	return func(w http.ResponseWriter, _ []byte) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// TestPostSignsAndRetriesBadNonce checks the signed POST: a valid JWS with
// kid, url and a fresh nonce (fakeCA checks them), the payload as given or
// empty for POST-as-GET, and one retry after badNonce, not two.
func TestPostSignsAndRetriesBadNonce(t *testing.T) {
	f := newFakeCA(t)
	badNonce := problemAnswer(400, "urn:ietf:params:acme:error:badNonce", "stale")
	f.answers = []func(http.ResponseWriter, []byte){
		badNonce,
		jsonAnswer(201, nil, `{"status":"pending"}`),
		badNonce,
		badNonce,
		jsonAnswer(200, nil, `{}`),
	}
	p := f.poster()
	ctx := context.Background()
	ans, err := p.post(ctx, "newOrder", f.srv.URL+"/obj", []byte(`{"a":1}`))
	if err != nil || ans.status != 201 {
		t.Fatalf("post after one badNonce: %v %v, want the retried answer", ans, err)
	}
	_, err = p.post(ctx, "newOrder", f.srv.URL+"/obj", []byte(`{"a":2}`))
	var pe *ProblemError
	if !errors.As(err, &pe) || pe.Type != "urn:ietf:params:acme:error:badNonce" {
		t.Fatalf("post after two badNonce: %v, want the badNonce problem", err)
	}
	if _, err := p.post(ctx, "poll", f.srv.URL+"/obj", nil); err != nil {
		t.Fatal(err)
	}
	if f.posts != 5 {
		t.Errorf("%d POSTs, want 5", f.posts)
	}
	if got := string(f.payloads[1]); got != `{"a":1}` {
		t.Errorf("payload %q", got)
	}
	if got := f.payloads[4]; len(got) != 0 {
		t.Errorf("POST-as-GET payload %q, want empty", got)
	}
}

// TestPostProblems checks how an error answer comes back.
func TestPostProblems(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(http.ResponseWriter, []byte)
		want   string
	}{
		{"problem document with subproblems",
			problemAnswer(403, "urn:ietf:params:acme:error:rejectedIdentifier", "not for you"),
			`newOrder: the CA answered urn:ietf:params:acme:error:rejectedIdentifier: not for you; subproblem for dns "a.example": urn:ietf:params:acme:error:malformed: sub`},
		{"error that is not a problem document",
			jsonAnswer(502, nil, "<html>bad gateway</html>"),
			"HTTP 502 from"},
		{"answer over the size limit",
			jsonAnswer(200, nil, strings.Repeat(" ", MaxResponseBody+1)),
			"over the limit of 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCA(t)
			f.answers = append(f.answers, tc.answer)
			_, err := f.poster().post(context.Background(), "newOrder", f.srv.URL+"/obj", []byte(`{}`))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("post: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestPollHonoursRetryAfter polls an object that becomes ready on the third
// try, with Retry-After 0 (so the test does not wait), and one whose
// Retry-After is past the limit, which ends the wait at once.
func TestPollHonoursRetryAfter(t *testing.T) {
	f := newFakeCA(t)
	pending := jsonAnswer(200, map[string]string{"Retry-After": "0"}, `{"status":"pending"}`)
	f.answers = []func(http.ResponseWriter, []byte){pending, pending, jsonAnswer(200, nil, `{"status":"ready"}`),
		jsonAnswer(200, map[string]string{"Retry-After": "3600"}, `{"status":"pending"}`)}
	var obj struct{ Status string }
	done := func() (bool, error) { return obj.Status != "pending", nil }
	if err := poll(context.Background(), f.poster(), "order", f.srv.URL+"/obj", time.Minute, &obj, done); err != nil {
		t.Fatalf("poll: %v", err)
	}
	if f.posts != 3 || obj.Status != "ready" {
		t.Fatalf("%d polls, status %q; want 3 and ready", f.posts, obj.Status)
	}
	err := poll(context.Background(), f.poster(), "order", f.srv.URL+"/obj", time.Minute, &obj, done)
	if err == nil || !containsAll(err.Error(), `order: still "pending"`, "next try (in 1h0m0s) would pass the limit of 1m0s") {
		t.Fatalf("poll with a long Retry-After: %v", err)
	}
	if f.posts != 4 {
		t.Errorf("%d polls, want 4: the long Retry-After must end the wait at once", f.posts)
	}
}

// TestPollStopsWithContext checks a cancelled context ends the wait.
func TestPollStopsWithContext(t *testing.T) {
	f := newFakeCA(t)
	f.answers = []func(http.ResponseWriter, []byte){jsonAnswer(200, map[string]string{"Retry-After": "30"}, `{"status":"pending"}`)}
	ctx, cancel := context.WithCancel(context.Background())
	var obj struct{ Status string }
	err := poll(ctx, f.poster(), "order", f.srv.URL+"/obj", time.Hour, &obj, func() (bool, error) {
		cancel()
		return false, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("poll: %v, want context.Canceled", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"7":                             7 * time.Second,
		"Fri, 02 Jan 2026 03:04:15 GMT": 10 * time.Second,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0, // in the past
	} {
		got, ok := retryAfter(http.Header{"Retry-After": {v}}, now)
		if !ok || got != want {
			t.Errorf("Retry-After %q: %v %v, want %v", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "soon", "-1", "1.5"} {
		if _, ok := retryAfter(http.Header{"Retry-After": {v}}, now); ok {
			t.Errorf("Retry-After %q accepted", v)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// TestEventJSON checks the JSON form of progress events.
func TestEventJSON(t *testing.T) {
	e := Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Stage: StageChallenge, Duration: 1500 * time.Microsecond,
		Message: "m", Err: errors.New("boom"), Fields: map[string]string{"nonce": "ab"}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-01-02T03:04:05Z","stage":"challenge","status":"error","duration_ms":1.5,"message":"m","error":"boom","fields":{"nonce":"ab"}}`
	if string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
}
