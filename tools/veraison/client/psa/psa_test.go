package psa

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/veraison/ear"
	"github.com/veraison/psatoken"
)

const testClaims = `{
  "eat-profile": "http://arm.com/psa/2.0.0",
  "psa-client-id": 1,
  "psa-security-lifecycle": 12288,
  "psa-implementation-id": "YXR0ZXN0LWFjbWUtcHNhLXRlc3QtaW1wbC1pZC12MDE=",
  "psa-software-components": [
    {"measurement-type": "BL", "measurement-value": "pMOyr2g+kfG15bUjXuR1w4mUhtkiy/f8j/KndrAtrc8=",
     "signer-id": "KxpDNwOr0L88a2faKe4fnVT3UhdRt6Xrfh8RA4D12J0="}
  ]
}`

func newIAK(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	p, err := GenerateIAK(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := LoadIAK(p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewTokenVerifiesAndCarriesNonce(t *testing.T) {
	key := newIAK(t)
	for _, n := range []int{32, 48, 64} {
		nonce := randBytes(t, n)
		tok, err := NewToken([]byte(testClaims), nonce, key)
		if err != nil {
			t.Fatalf("%d-byte nonce: %v", n, err)
		}
		ev, err := psatoken.DecodeAndValidateEvidenceFromCOSE(tok)
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.Verify(&key.PublicKey); err != nil {
			t.Fatalf("token does not verify under the IAK: %v", err)
		}
		other := newIAK(t)
		if err := ev.Verify(&other.PublicKey); err == nil {
			t.Fatal("token verifies under another key")
		}
		got, err := ev.Claims.GetNonce()
		if err != nil || !bytes.Equal(got, nonce) {
			t.Fatalf("psa-nonce = %x (%v), want %x", got, err, nonce)
		}
		inst, err := ev.Claims.GetInstID()
		want, _ := InstanceID(&key.PublicKey)
		if err != nil || !bytes.Equal(inst, want) {
			t.Fatalf("psa-instance-id = %x (%v), want %x", inst, err, want)
		}
		if p, _ := ev.Claims.GetProfile(); p != psatoken.Profile2Name {
			t.Fatalf("profile = %q", p)
		}
	}
}

func TestNewTokenKeepsTemplateInstanceID(t *testing.T) {
	key := newIAK(t)
	inst := append([]byte{1}, bytes.Repeat([]byte{7}, 32)...)
	var m map[string]any
	if err := json.Unmarshal([]byte(testClaims), &m); err != nil {
		t.Fatal(err)
	}
	m["psa-instance-id"] = base64.StdEncoding.EncodeToString(inst)
	tmpl, _ := json.Marshal(m)
	tok, err := NewToken(tmpl, randBytes(t, 64), key)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := psatoken.DecodeAndValidateEvidenceFromCOSE(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ev.Claims.GetInstID(); !bytes.Equal(got, inst) {
		t.Fatalf("psa-instance-id = %x, want the template's %x", got, inst)
	}
}

func TestNewTokenRejects(t *testing.T) {
	key := newIAK(t)
	withField := func(k string, v any) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(testClaims), &m); err != nil {
			t.Fatal(err)
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, tc := range []struct {
		name   string
		claims string
		nonce  int
		want   string
	}{
		{"16-byte nonce", testClaims, 16, "nonce is 16 bytes, want 32, 48 or 64"},
		{"65-byte nonce", testClaims, 65, "nonce is 65 bytes"},
		{"template with nonce", withField("psa-nonce", base64.StdEncoding.EncodeToString(make([]byte, 32))), 32, "carries psa-nonce"},
		{"profile 1 template", withField("eat-profile", nil), 32, "profile"},
		{"not json", `{`, 32, "claims template"},
		{"no implementation id", withField("psa-implementation-id", nil), 32, "implementation"},
		{"short implementation id", withField("psa-implementation-id", "AAAA"), 32, "implementation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewToken([]byte(tc.claims), make([]byte, tc.nonce), key)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadIAKRejects(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	good, _ := GenerateIAK(rand.Reader)
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"not pem", []byte("hello"), "no PEM block"},
		{"public key block", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}), `"PUBLIC KEY"`},
		{"P-384", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER}), "P-384, want P-256"},
		{"RSA", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}), "want an ECDSA P-256 key"},
		{"trailing data", append(append([]byte{}, good...), "junk"...), "data after the PEM block"},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2}}), "IAK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := LoadIAK(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestInstanceIDIsRANDUEID(t *testing.T) {
	key := newIAK(t)
	id, err := InstanceID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 33 || id[0] != 0x01 {
		t.Fatalf("instance ID = %x, want 0x01 || 32 bytes", id)
	}
	other, _ := InstanceID(&newIAK(t).PublicKey)
	if bytes.Equal(id, other) {
		t.Fatal("two keys have the same instance ID")
	}
}

// earFixture signs EARs the way Veraison's vts does (veraison/ear, ES256).
type earFixture struct {
	key   *ecdsa.PrivateKey
	nonce []byte
	now   time.Time
}

func newEARFixture(t *testing.T) earFixture {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return earFixture{key: k, nonce: randBytes(t, 64), now: time.Now()}
}

func (f earFixture) sign(t *testing.T, edit func(*ear.AttestationResult)) []byte {
	t.Helper()
	ar := ear.NewAttestationResult(SubmodName, "test", "test")
	n := base64.URLEncoding.EncodeToString(f.nonce)
	ar.Nonce = &n
	iat := f.now.Unix()
	ar.IssuedAt = &iat
	ar.Submods[SubmodName].TrustVector.SetAll(ear.ApprovedRuntimeClaim)
	ar.UpdateStatusFromTrustVector()
	if edit != nil {
		edit(ar)
	}
	b, err := ar.Sign(jwa.ES256(), f.key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f earFixture) check() EARCheck {
	return EARCheck{Key: &f.key.PublicKey, Nonce: f.nonce, Now: f.now, MaxAge: 5 * time.Minute, Skew: time.Minute}
}

func TestCheckEARAccepts(t *testing.T) {
	f := newEARFixture(t)
	ar, err := CheckEAR(f.sign(t, nil), f.check())
	if err != nil {
		t.Fatal(err)
	}
	st, err := SubmodStatus(ar, SubmodName)
	if err != nil || st != ear.TrustTierAffirming {
		t.Fatalf("status = %v (%v), want affirming", st, err)
	}

	t.Run("unpadded eat_nonce", func(t *testing.T) {
		jwt := f.sign(t, func(ar *ear.AttestationResult) {
			n := base64.RawURLEncoding.EncodeToString(f.nonce)
			ar.Nonce = &n
		})
		if _, err := CheckEAR(jwt, f.check()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCheckEARRejects(t *testing.T) {
	f := newEARFixture(t)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name  string
		jwt   func() []byte
		check func(EARCheck) EARCheck
		want  string
	}{
		{"another key", func() []byte { return f.sign(t, nil) },
			func(c EARCheck) EARCheck { c.Key = &other.PublicKey; return c }, "failed verifying JWT"},
		{"no key", func() []byte { return f.sign(t, nil) },
			func(c EARCheck) EARCheck { c.Key = nil; return c }, "no pinned key"},
		{"other nonce", func() []byte { return f.sign(t, nil) },
			func(c EARCheck) EARCheck { c.Nonce = randBytes(t, 64); return c }, "eat_nonce is"},
		{"no nonce", func() []byte {
			return f.sign(t, func(ar *ear.AttestationResult) { ar.Nonce = nil })
		}, nil, "no eat_nonce"},
		{"nonce not base64url", func() []byte {
			return f.sign(t, func(ar *ear.AttestationResult) { s := "a+b/c+d/e+f/"; ar.Nonce = &s })
		}, nil, "eat_nonce"},
		{"too old", func() []byte { return f.sign(t, nil) },
			func(c EARCheck) EARCheck { c.Now = c.Now.Add(6 * time.Minute); return c }, "older than"},
		{"from the future", func() []byte { return f.sign(t, nil) },
			func(c EARCheck) EARCheck { c.Now = c.Now.Add(-2 * time.Minute); return c }, "is after"},
		{"tampered", func() []byte {
			b := f.sign(t, nil)
			parts := strings.Split(string(b), ".")
			var claims map[string]any
			raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
			_ = json.Unmarshal(raw, &claims)
			claims["eat_nonce"] = base64.URLEncoding.EncodeToString(randBytes(t, 64))
			raw, _ = json.Marshal(claims)
			parts[1] = base64.RawURLEncoding.EncodeToString(raw)
			return []byte(strings.Join(parts, "."))
		}, nil, "failed verifying JWT"},
		{"other profile", func() []byte {
			tok := jwt.New()
			_ = tok.Set("eat_profile", "tag:example.com,2025:other")
			_ = tok.Set("iat", f.now.Unix())
			_ = tok.Set("eat_nonce", base64.URLEncoding.EncodeToString(f.nonce))
			_ = tok.Set("ear.verifier-id", map[string]any{"build": "x", "developer": "y"})
			_ = tok.Set("submods", map[string]any{SubmodName: map[string]any{"ear.status": "affirming"}})
			k, _ := jwk.Import(f.key)
			b, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), k))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, nil, "eat_profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.check()
			if tc.check != nil {
				c = tc.check(c)
			}
			_, err := CheckEAR(tc.jwt(), c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSubmodStatusNamesTheSubmodsPresent(t *testing.T) {
	ar := ear.NewAttestationResult("CCA_SSD_PLATFORM", "b", "d")
	_, err := SubmodStatus(ar, SubmodName)
	if err == nil || !strings.Contains(err.Error(), `no submod "PSA_IOT" (has CCA_SSD_PLATFORM)`) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseEARKey(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pemPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	pubJWK, _ := jwk.Import(&k.PublicKey)
	pubJSON, _ := json.Marshal(pubJWK)
	privJWK, _ := jwk.Import(k)
	privJSON, _ := json.Marshal(privJWK)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384SPKI, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaSPKI, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)

	for _, in := range [][]byte{pemPub, pubJSON} {
		got, err := ParseEARKey(in)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(&k.PublicKey) {
			t.Fatal("parsed key differs")
		}
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"private JWK", privJSON, "private key"},
		{"P-384", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: p384SPKI}), "want P-256"},
		{"RSA", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaSPKI}), "want an ECDSA P-256 key"},
		{"garbage", []byte("nope"), "neither a JWK nor a PEM"},
		{"bad JWK", []byte(`{"kty": "EC"}`), "JWK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseEARKey(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBuilderChecksTheSession(t *testing.T) {
	nonce := randBytes(t, 64)
	called := 0
	b := builder{nonce: nonce, mediaType: MediaTypeToken, build: func(n []byte) ([]byte, error) {
		called++
		return n, nil
	}}
	if _, _, err := b.BuildEvidence(randBytes(t, 64), []string{MediaTypeToken}); err == nil || !strings.Contains(err.Error(), "session nonce is") {
		t.Fatalf("other session nonce: err = %v", err)
	}
	if _, _, err := b.BuildEvidence(nonce, []string{"application/psa-attestation-token"}); err == nil || !strings.Contains(err.Error(), "does not accept") {
		t.Fatalf("media type not accepted: err = %v", err)
	}
	if called != 0 {
		t.Fatal("evidence was built for a session that failed the checks")
	}
	ev, mt, err := b.BuildEvidence(nonce, []string{"x", MediaTypeToken})
	if err != nil || mt != MediaTypeToken || !bytes.Equal(ev, nonce) || called != 1 {
		t.Fatalf("good session: ev=%x mt=%q err=%v called=%d", ev, mt, err, called)
	}
}

func TestJoinURLRejects(t *testing.T) {
	for _, in := range []string{"127.0.0.1:8080", "ftp://h/", "http://", "::"} {
		if _, err := joinURL(in, NewSessionPath); err == nil {
			t.Errorf("joinURL(%q) succeeded", in)
		}
	}
	got, err := joinURL("http://127.0.0.1:8080/", NewSessionPath)
	if err != nil || got != "http://127.0.0.1:8080/challenge-response/v1/newSession" {
		t.Fatalf("joinURL = %q, %v", got, err)
	}
}
