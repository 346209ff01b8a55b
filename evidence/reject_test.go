package evidence

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// enc encodes v deterministically, failing the test on error.
func enc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := DetEncMode().Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// validKCParts returns the claims map of a valid kc, for tests to change.
func validKCParts(t testing.TB) (map[any]any, map[int64]any) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	raw, err := NewKC(k.Public(), bytes.Repeat([]byte{1}, NonceSize), time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	kc, err := ParseKC(raw)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := coseKeyFromPublic(kc.Key)
	if err != nil {
		t.Fatal(err)
	}
	var coseKey map[int64]any
	b, _ := ck.MarshalCBOR()
	if err := cbor.Unmarshal(b, &coseKey); err != nil {
		t.Fatal(err)
	}
	claims := map[any]any{
		int64(claimNonce):  kc.Nonce,
		int64(claimIAT):    kc.IssuedAt.Unix(),
		int64(claimIntUse): int64(IntendedUseIssuance),
		int64(claimCnf):    map[int64]any{cnfCOSEKey: coseKey},
	}
	return claims, coseKey
}

func tagged(t testing.TB, claims any) []byte {
	return enc(t, cbor.Tag{Number: TagUCCS, Content: claims})
}

func TestParseKCRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(claims map[any]any, key map[int64]any) []byte
		want   string
	}{
		{"missing eat_nonce", func(c map[any]any, _ map[int64]any) []byte { delete(c, int64(claimNonce)); return nil }, "eat_nonce (10) is missing"},
		{"missing cnf", func(c map[any]any, _ map[int64]any) []byte { delete(c, int64(claimCnf)); return nil }, "cnf (8) is missing"},
		{"missing iat", func(c map[any]any, _ map[int64]any) []byte { delete(c, int64(claimIAT)); return nil }, "iat (6) is missing"},
		{"missing intuse", func(c map[any]any, _ map[int64]any) []byte { delete(c, int64(claimIntUse)); return nil }, "intuse (275) is missing"},
		{"short nonce", func(c map[any]any, _ map[int64]any) []byte { c[int64(claimNonce)] = make([]byte, 16); return nil }, "eat_nonce is 16 bytes, want 32"},
		{"nonce as array", func(c map[any]any, _ map[int64]any) []byte { c[int64(claimNonce)] = make([]int, 32); return nil }, "eat_nonce: not a byte string"},
		{"intuse 1", func(c map[any]any, _ map[int64]any) []byte { c[int64(claimIntUse)] = 1; return nil }, "intuse is 1, want 4"},
		{"iat text", func(c map[any]any, _ map[int64]any) []byte { c[int64(claimIAT)] = "now"; return nil }, "iat is not an integer"},
		{"huge iat", func(c map[any]any, _ map[int64]any) []byte { c[int64(claimIAT)] = uint64(1 << 63); return nil }, "iat is not an integer"},
		{"cnf extra member", func(c map[any]any, k map[int64]any) []byte {
			c[int64(claimCnf)] = map[int64]any{cnfCOSEKey: k, 3: []byte("kid")}
			return nil
		}, "cnf must hold exactly one member"},
		{"wrong tag", func(c map[any]any, _ map[int64]any) []byte { return enc(t, cbor.Tag{Number: 61, Content: c}) }, "CBOR tag 61, want 601"},
		{"untagged map", func(c map[any]any, _ map[int64]any) []byte { return enc(t, c) }, "not a CBOR tag 601"},
		{"EC x short", func(_ map[any]any, k map[int64]any) []byte { k[-2] = k[-2].([]byte)[1:]; return nil }, "x is 31 bytes and y 32 bytes, want 32 each"},
		{"EC point off curve", func(_ map[any]any, k map[int64]any) []byte { k[-3] = bytes.Repeat([]byte{1}, 32); return nil }, "EC2 point"},
		{"EC curve P-521", func(_ map[any]any, k map[int64]any) []byte { k[-1] = 3; return nil }, "EC2 curve 3"},
		{"COSE_Key extra param", func(_ map[any]any, k map[int64]any) []byte { k[-4] = []byte{1}; return nil }, "parameter -4 is not allowed"},
		{"COSE_Key wrong alg", func(_ map[any]any, k map[int64]any) []byte { k[3] = -35; return nil }, "alg"},
		{"COSE_Key key_ops", func(_ map[any]any, k map[int64]any) []byte { k[4] = []int{1}; return nil }, "key_ops (4) is not allowed"},
		{"COSE_Key crv as bytes (panicked go-cose)", func(_ map[any]any, k map[int64]any) []byte { k[-1] = []byte{1}; return nil }, "crv (-1) is not an integer"},
		{"COSE_Key kty symmetric", func(_ map[any]any, k map[int64]any) []byte { k[1] = 4; return nil }, "kty 4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, key := validKCParts(t)
			b := c.mutate(claims, key)
			if b == nil {
				b = tagged(t, claims)
			}
			_, err := ParseKC(b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseKC error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseKCRejectsEncodings(t *testing.T) {
	claims, _ := validKCParts(t)
	good := tagged(t, claims)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated", good[:len(good)-3], "unexpected EOF"},
		{"trailing bytes", append(bytes.Clone(good), 0x00), "extraneous data"},
		{"oversized", append(bytes.Clone(good), make([]byte, MaxKCSize)...), "over the limit of 1024"},
		// Tag 601, then an indefinite-length map holding iat.
		{"indefinite map", []byte{0xd9, 0x02, 0x59, 0xbf, 0x06, 0x01, 0xff}, "indefinite-length"},
		// Tag 601 around {6: 1, 6: 2}.
		{"duplicate key", []byte{0xd9, 0x02, 0x59, 0xa2, 0x06, 0x01, 0x06, 0x02}, "duplicate map key"},
		// Tag 601 around {9: [[[[[[[[[[0]]]]]]]]]]}.
		{"deep nesting", append([]byte{0xd9, 0x02, 0x59, 0xa1, 0x09}, append(bytes.Repeat([]byte{0x81}, 10), 0x00)...), "exceeded max nested level"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseKC(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseKC error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestNewKCRejectsKeys(t *testing.T) {
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	r1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	r2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	smallE := r2048.PublicKey
	smallE.E = 3
	cases := []struct {
		name string
		key  any
		want string
	}{
		{"P-224", p224.Public(), "EC curve P-224"},
		{"RSA 1024", r1024.Public(), "RSA key of 1024 bits"},
		{"RSA e=3", &smallE, "RSA public exponent 3"},
		{"Ed25519 short", ed25519.PublicKey(make([]byte, 16)), "Ed25519 key is 16 bytes"},
		{"string", "not a key", "unsupported key: string"},
		{"nil", nil, "no key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewKC(c.key, make([]byte, NonceSize), time.Now())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewKC error = %v, want it to contain %q", err, c.want)
			}
		})
	}
	if _, err := NewKC(r2048.Public(), make([]byte, 16), time.Now()); err == nil || !strings.Contains(err.Error(), "eat_nonce is 16 bytes") {
		t.Fatalf("NewKC with a short nonce: %v", err)
	}
}

func TestParseKCRejectsSmallRSA(t *testing.T) {
	// A kc naming a 1024-bit RSA key, encoded by hand through the CBOR library
	// since NewKC refuses to make one.
	r1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := validKCParts(t)
	claims[int64(claimCnf)] = map[int64]any{cnfCOSEKey: map[int64]any{1: 3, -1: r1024.N.Bytes(), -2: []byte{1, 0, 1}}}
	if _, err := ParseKC(tagged(t, claims)); err == nil || !strings.Contains(err.Error(), "RSA key of 1024 bits") {
		t.Fatalf("ParseKC error = %v, want RSA below 2048 rejected", err)
	}
	claims[int64(claimCnf)] = map[int64]any{cnfCOSEKey: map[int64]any{1: 3, -1: append([]byte{0}, r1024.N.Bytes()...), -2: []byte{1, 0, 1}}}
	if _, err := ParseKC(tagged(t, claims)); err == nil || !strings.Contains(err.Error(), "leading zero") {
		t.Fatalf("ParseKC error = %v, want leading zero rejected", err)
	}
}

func TestKCFreshness(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	kc := &KC{IssuedAt: now}
	if err := kc.CheckFreshness(now.Add(MaxKCAge - time.Second)); err != nil {
		t.Fatalf("fresh kc rejected: %v", err)
	}
	if err := kc.CheckFreshness(now.Add(MaxKCAge + time.Second)); err == nil || !strings.Contains(err.Error(), "old") {
		t.Fatalf("stale kc: %v", err)
	}
	if err := kc.CheckFreshness(now.Add(-MaxKCFutureSkew - time.Second)); err == nil || !strings.Contains(err.Error(), "future") {
		t.Fatalf("future kc: %v", err)
	}
}

func TestParseBundleRejects(t *testing.T) {
	kc := []byte{0xd9, 0x02, 0x59, 0xa0}
	rec := func(mt string, v []byte) []any { return []any{mt, v, 4} }
	good := func() map[string]any {
		return map[string]any{
			"__cmwc_t": CollectionType,
			"kc":       rec(MediaTypeKC, kc),
			"platform": rec(MediaTypeTSMReport, []byte("x")),
		}
	}
	cases := []struct {
		name   string
		mutate func(m map[string]any) []byte
		want   string
	}{
		{"missing kc", func(m map[string]any) []byte { delete(m, "kc"); return nil }, `record "kc" is missing`},
		{"missing platform", func(m map[string]any) []byte { delete(m, "platform"); return nil }, `record "platform" is missing`},
		{"missing type", func(m map[string]any) []byte { delete(m, "__cmwc_t"); return nil }, `"__cmwc_t" is missing`},
		{"extra label", func(m map[string]any) []byte { m["extra"] = rec("a/b", []byte{1}); return nil }, `label "extra" is not allowed`},
		{"wrong collection type", func(m map[string]any) []byte { m["__cmwc_t"] = "tag:example.com,2026:x"; return nil }, "want \"tag:attest-acme.dev,2026:key-confirmation/v1\""},
		{"kc media type", func(m map[string]any) []byte { m["kc"] = rec("application/cbor", kc); return nil }, `kc record has media type "application/cbor"`},
		{"indicator 1", func(m map[string]any) []byte { m["platform"] = []any{MediaTypeTSMReport, []byte("x"), 1}; return nil }, "indicator is 1, want 4"},
		{"two-element record", func(m map[string]any) []byte { m["platform"] = []any{MediaTypeTSMReport, []byte("x")}; return nil }, "is not [media type, value, indicator]"},
		{"tag CMW", func(m map[string]any) []byte {
			m["platform"] = cbor.Tag{Number: 1668576818, Content: []byte("x")}
			return nil
		}, "is not [media type, value, indicator]"},
		{"value as text", func(m map[string]any) []byte { m["platform"] = []any{MediaTypeTSMReport, "x", 4}; return nil }, "value: not a byte string"},
		{"oversized item", func(m map[string]any) []byte {
			m["platform"] = rec(MediaTypeTSMReport, make([]byte, MaxItemSize+1))
			return nil
		}, "over the limit of 32768"},
		{"oversized kc", func(m map[string]any) []byte { m["kc"] = rec(MediaTypeKC, make([]byte, MaxKCSize+1)); return nil }, "over the limit of 1024"},
		{"not a map", func(m map[string]any) []byte { return enc(t, []any{1, 2}) }, "not a CBOR map"},
		{"int label", func(m map[string]any) []byte {
			mm := map[any]any{}
			for k, v := range m {
				mm[k] = v
			}
			mm[7] = 1
			return enc(t, mm)
		}, "not a CBOR map with text labels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := good()
			b := c.mutate(m)
			if b == nil {
				b = enc(t, m)
			}
			_, err := ParseBundle(b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseBundle error = %v, want it to contain %q", err, c.want)
			}
		})
	}
	// Raw encodings the CBOR library would not produce.
	b := enc(t, good())
	raw := []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated", b[:len(b)-1], "unexpected EOF"},
		{"oversized", make([]byte, MaxBundleSize+1), "over the limit of 65536"},
		// {"kc": 1, "kc": 2}
		{"duplicate label", []byte{0xa2, 0x62, 'k', 'c', 0x01, 0x62, 'k', 'c', 0x02}, "duplicate map key"},
	}
	for _, c := range raw {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseBundle(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseBundle error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestBindingHashFor(t *testing.T) {
	if _, err := BindingHashFor("application/octet-stream"); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("unknown media type: %v", err)
	}
}
