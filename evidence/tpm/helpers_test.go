package tpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"github.com/attest-acme/attest-acme/evidence/tpm/tpmtest"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/google/go-tpm/tpm2/transport"
)

// openSimulator opens the in-process simulator for one test and closes it at
// cleanup. The simulator is one per process: a second open blocks until the
// first is closed, so tests that use it run one after the other.
func openSimulator(t testing.TB) transport.TPMCloser {
	t.Helper()
	if !haveSimulator {
		t.Skip("the in-process simulator needs cgo; skipping")
	}
	tpm, err := OpenSimulator()
	if err != nil {
		t.Fatalf("OpenSimulator: %v", err)
	}
	t.Cleanup(func() {
		if err := tpm.Close(); err != nil {
			t.Errorf("closing the simulator: %v", err)
		}
	})
	return tpm
}

// startSwtpm runs swtpm for the test and returns the spec Open takes for it;
// it skips the test when swtpm is not installed.
func startSwtpm(t testing.TB) string {
	t.Helper()
	cmdAddr, _ := tpmtest.StartSwtpm(t)
	return "tcp://" + cmdAddr
}

// newBinding builds a real kc for a fresh P-256 key and returns it with
// D = SHA-256(kc), as a client does before quoting.
func newBinding(t testing.TB) (kc, d []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, evidence.NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	kc, err = evidence.NewKC(key.Public(), nonce, time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return kc, evidence.Binding(crypto.SHA256, kc)
}

// newAttester makes an Attester on tpm and closes it at cleanup.
func newAttester(t testing.TB, tpm transport.TPM, cfg Config) *Attester {
	t.Helper()
	a, err := NewAttester(tpm, cfg)
	if err != nil {
		t.Fatalf("NewAttester: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Attester.Close: %v", err)
		}
	})
	return a
}

// attest quotes d with a and checks the media type.
func attest(t testing.TB, a *Attester, d []byte) []byte {
	t.Helper()
	ev, err := a.Attest(context.Background(), d)
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	if ev.MediaType != evidence.MediaTypeTPMQuote {
		t.Fatalf("media type %q, want %q", ev.MediaType, evidence.MediaTypeTPMQuote)
	}
	return ev.Data
}

// pinned returns a Verifier that pins the given AKs.
func pinned(t testing.TB, aks ...crypto.PublicKey) *Verifier {
	t.Helper()
	v, err := NewVerifier(Anchors{AKs: aks})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantErr fails unless err is non-nil and mentions every one of parts.
func wantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

// mutate decodes a quote map, lets change alter it, and encodes it again.
func mutate(t testing.TB, data []byte, change func(q *Quote)) []byte {
	t.Helper()
	q, err := ParseQuote(data)
	if err != nil {
		t.Fatalf("ParseQuote: %v", err)
	}
	change(q)
	out, err := q.Marshal()
	if err != nil {
		t.Fatalf("Quote.Marshal: %v", err)
	}
	return out
}

// fixture is one real quote from the simulator over a real kc's D.
type fixture struct {
	tpm  transport.TPM
	a    *Attester
	kc   []byte
	d    []byte
	data []byte
}

// newFixture opens the simulator and quotes a fresh kc's D with cfg.
func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	f := &fixture{tpm: openSimulator(t)}
	f.a = newAttester(t, f.tpm, cfg)
	f.kc, f.d = newBinding(t)
	f.data = attest(t, f.a, f.d)
	return f
}
