package verifier

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/veraison/ear"
)

// signedOutcome signs an affirming outcome for key with a fresh signer.
func signedOutcome(t *testing.T, now time.Time, nonce []byte, key any) ([]byte, *Signer) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := NewSigner(k, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(Outcome{Platform: PlatformSEVSNP, Status: ear.TrustTierAffirming, Key: key, Workload: "w", Nonce: nonce, PolicyID: "p"})
	if err != nil {
		t.Fatal(err)
	}
	return tok, s
}

// reSigned decodes tok's claims and signs them again with opts (alg none, HS256).
func reSigned(t *testing.T, tok []byte, opt jwt.SignOption) []byte {
	t.Helper()
	parsed, err := jwt.ParseInsecure(tok)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Sign(parsed, opt)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCheckerRejects(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	nonce := []byte("0123456789abcdef0123456789abcdef")
	attested, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok, s := signedOutcome(t, now, nonce, attested.Public())
	checker := func(at time.Time) *Checker {
		return &Checker{Key: s.Public(), Now: func() time.Time { return at }}
	}
	if _, err := checker(now).Check(tok, nonce, attested.Public()); err != nil {
		t.Fatalf("good EAR rejected: %v", err)
	}

	otherTok, _ := signedOutcome(t, now, nonce, attested.Public())
	pubDER, _ := x509.MarshalPKIXPublicKey(s.Public())
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	noKey, _ := s.Sign(Outcome{Platform: PlatformSEVSNP, Status: ear.TrustTierAffirming, Nonce: nonce})
	contra, _ := s.Sign(Outcome{Platform: PlatformSEVSNP, Status: ear.TrustTierContraindicated, Nonce: nonce, Reason: "debug", Key: attested.Public()})
	warn, _ := s.Sign(Outcome{Platform: PlatformSEVSNP, Status: ear.TrustTierWarning, Nonce: nonce, Key: attested.Public()})

	cases := []struct {
		name  string
		tok   []byte
		at    time.Time
		nonce []byte
		key   any
		want  string
	}{
		{"signed by another key", otherTok, now, nonce, attested.Public(), "signature"},
		{"alg none", reSigned(t, tok, jwt.WithInsecureNoSignature()), now, nonce, attested.Public(), "signature"},
		{"HS256 keyed with the public key", reSigned(t, tok, jwt.WithKey(jwa.HS256(), pubDER)), now, nonce, attested.Public(), "signature"},
		{"expired", tok, now.Add(DefaultEARMaxAge + time.Second), nonce, attested.Public(), "old"},
		{"from the future", tok, now.Add(-time.Hour), nonce, attested.Public(), "future"},
		{"nonce mismatch", tok, now, []byte("another nonce, thirty-two bytes!"), attested.Public(), "eat_nonce is not the nonce"},
		{"akpub mismatch", tok, now, nonce, other.Public(), "akpub is not the key"},
		{"no akpub", noKey, now, nonce, attested.Public(), "no akpub"},
		{"contraindicated", contra, now, nonce, attested.Public(), "status is contraindicated: debug"},
		{"warning not accepted", warn, now, nonce, attested.Public(), "status is warning"},
		{"not a JWT", []byte("not.a.jwt"), now, nonce, attested.Public(), "signature"},
		{"oversized", make([]byte, MaxEARSize+1), now, nonce, attested.Public(), "over the limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := checker(c.at).Check(c.tok, c.nonce, c.key)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Check error = %v, want it to contain %q", err, c.want)
			}
		})
	}
	t.Run("warning accepted when configured", func(t *testing.T) {
		c := checker(now)
		c.Accept = []ear.TrustTier{ear.TrustTierAffirming, ear.TrustTierWarning}
		if _, err := c.Check(warn, nonce, attested.Public()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no expected key", func(t *testing.T) {
		if _, err := checker(now).Check(tok, nonce, nil); err == nil {
			t.Fatal("Check without an expected key passed")
		}
	})
}

func TestEARNonceEncodings(t *testing.T) {
	for _, s := range []string{"AQID", "AQID=", "AQIDBA==", "AQIDBA"} {
		if _, err := decodeEARNonce(s); err != nil {
			t.Errorf("decodeEARNonce(%q): %v", s, err)
		}
	}
	for _, s := range []string{"AQ+D", "AQ/D", "A"} {
		if _, err := decodeEARNonce(s); err == nil {
			t.Errorf("decodeEARNonce(%q) accepted", s)
		}
	}
}

func BenchmarkSignEAR(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := NewSigner(k, time.Now)
	o := Outcome{Platform: PlatformTPM, Status: ear.TrustTierAffirming, Key: k.Public(), Workload: "w", Nonce: make([]byte, 32), PolicyID: "p"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(o); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDescribe(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	attested, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok, s := signedOutcome(t, now, []byte("0123456789abcdef"), attested.Public())
	r, err := Describe(tok, s.Public())
	if err != nil || r.Workload != "w" || !keysEqual(r.Key, attested.Public()) {
		t.Fatalf("Describe = %+v, %v", r, err)
	}
	if _, err := Describe(tok, attested.Public().(*ecdsa.PublicKey)); err == nil {
		t.Fatal("Describe accepted an EAR under another key")
	}
}
