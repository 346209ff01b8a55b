package challenge

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/fxamacker/cbor/v2"
)

func mustCBOR(t testing.TB, v any) []byte {
	t.Helper()
	b, err := evidence.DetEncMode().Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAttObjRejects(t *testing.T) {
	bundle := []byte{0xa0}
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"fmt missing", mustCBOR(t, map[string]any{"attStmt": map[string]any{"cmw": bundle}}), "fmt is missing"},
		{"fmt not text", mustCBOR(t, map[string]any{"fmt": 1, "attStmt": map[string]any{"cmw": bundle}}), "fmt is not a text string"},
		{"fmt tpm", mustCBOR(t, map[string]any{"fmt": "tpm", "attStmt": map[string]any{"cmw": bundle}}), `fmt is "tpm", want "cmw"`},
		{"attStmt missing", mustCBOR(t, map[string]any{"fmt": "cmw"}), "attStmt is missing"},
		{"attStmt not a map", mustCBOR(t, map[string]any{"fmt": "cmw", "attStmt": []int{1}}), "attStmt is not a CBOR map"},
		{"cmw missing", mustCBOR(t, map[string]any{"fmt": "cmw", "attStmt": map[string]any{"x": bundle}}), "attStmt.cmw is missing"},
		{"cmw text", mustCBOR(t, map[string]any{"fmt": "cmw", "attStmt": map[string]any{"cmw": "x"}}), "attStmt.cmw is not a byte string"},
		{"cmw empty", mustCBOR(t, map[string]any{"fmt": "cmw", "attStmt": map[string]any{"cmw": []byte{}}}), "attStmt.cmw is empty"},
		{"not a map", mustCBOR(t, []int{1}), "not a CBOR map"},
		{"oversized", make([]byte, MaxAttObjSize+1), "over the limit of 65536"},
		// {"fmt": "cmw", "fmt": "cmw"}
		{"duplicate key", []byte{0xa2, 0x63, 'f', 'm', 't', 0x63, 'c', 'm', 'w', 0x63, 'f', 'm', 't', 0x63, 'c', 'm', 'w'}, "duplicate map key"},
		// {"x": [[[[[[[[[[0]]]]]]]]]]}
		{"deep nesting", append([]byte{0xa1, 0x61, 'x'}, append(bytes.Repeat([]byte{0x81}, 10), 0)...), "exceeded max nested level"},
		// {"fmt": indefinite-length text}
		{"indefinite length", []byte{0xa1, 0x63, 'f', 'm', 't', 0x7f, 0x63, 'c', 'm', 'w', 0xff}, "indefinite-length"},
		{"truncated", mustCBOR(t, map[string]any{"fmt": "cmw", "attStmt": map[string]any{"cmw": bundle}})[:10], "unexpected EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseAttObj(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseAttObj error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseAttObjIgnoresUnknownKeys(t *testing.T) {
	b := mustCBOR(t, map[string]any{"fmt": "cmw", "authData": []byte{1}, "attStmt": map[string]any{"cmw": []byte{0xa0}, "alg": -7}})
	got, err := ParseAttObj(b)
	if err != nil || !bytes.Equal(got, []byte{0xa0}) {
		t.Fatalf("ParseAttObj = %x, %v", got, err)
	}
}

func TestParsePayloadRejects(t *testing.T) {
	attObj := mustCBOR(t, map[string]any{"fmt": "cmw", "attStmt": map[string]any{"cmw": []byte{0xfb, 0xff}}})
	for len(attObj)%3 == 0 {
		attObj = append(attObj, 0) // so that padded base64 has padding
	}
	cases := []struct {
		name string
		p    string
		want string
	}{
		{"padding", `{"attObj":"` + base64.URLEncoding.EncodeToString(attObj) + `"}`, "not unpadded base64url"},
		{"standard alphabet", `{"attObj":"` + base64.RawStdEncoding.EncodeToString(attObj) + `"}`, "not unpadded base64url"},
		{"missing attObj", `{"attobj":"AA"}`, "attObj is missing"},
		{"not JSON", `attObj`, "payload:"},
		{"attObj number", `{"attObj":1}`, "payload:"},
		{"oversized", `{"attObj":"` + strings.Repeat("A", maxPayloadSize) + `"}`, "over the limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePayload([]byte(c.p))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParsePayload error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// echoAttester returns TSM-typed evidence that just holds D.
type echoAttester struct{}

func (echoAttester) BindingHash() crypto.Hash { return crypto.SHA512 }
func (echoAttester) Attest(_ context.Context, d []byte) (evidence.Evidence, error) {
	return evidence.Evidence{MediaType: evidence.MediaTypeTSMReport, Data: bytes.Clone(d)}, nil
}

func newAnswer(t *testing.T, keyAuth string, now time.Time) (*Answer, *ecdsa.PrivateKey) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, err := NewAnswer(t.Context(), echoAttester{}, keyAuth, k.Public(), now)
	if err != nil {
		t.Fatal(err)
	}
	return a, k
}

func TestDecodeRejects(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ans, _ := newAnswer(t, "tok.thumb", now)

	t.Run("other token", func(t *testing.T) {
		_, _, err := DecodePayload(ans.Payload, "other.thumb", now)
		assertProblem(t, err, BadAttestationStatement, "eat_nonce")
	})
	t.Run("other account", func(t *testing.T) {
		_, _, err := DecodePayload(ans.Payload, "tok.other", now)
		assertProblem(t, err, BadAttestationStatement, "does not match the challenge's nonce")
	})
	t.Run("stale kc", func(t *testing.T) {
		_, _, err := DecodePayload(ans.Payload, "tok.thumb", now.Add(evidence.MaxKCAge+time.Minute))
		assertProblem(t, err, BadAttestationStatement, "old")
	})
	t.Run("unknown platform media type", func(t *testing.T) {
		b, err := (evidence.Bundle{KC: ans.KC, Platform: evidence.Evidence{MediaType: "application/x-unknown", Data: []byte{1}}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		_, err = DecodeBundle(b, ans.Nonce, now)
		assertProblem(t, err, BadAttestationStatement, `platform media type "application/x-unknown" is not supported`)
	})
	t.Run("bad base64", func(t *testing.T) {
		_, _, err := DecodePayload([]byte(`{"attObj":"a+b="}`), "tok.thumb", now)
		assertProblem(t, err, BadAttestationStatement, "base64url")
	})
	t.Run("good", func(t *testing.T) {
		d, _, err := DecodePayload(ans.Payload, "tok.thumb", now)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.D, ans.D) || !bytes.Equal(d.Bundle.Platform.Data, ans.D) {
			t.Fatal("D was not recomputed to the value the platform signed")
		}
	})
}

func TestKCChangedAfterAttesting(t *testing.T) {
	// The platform signed D of the first kc; a kc for another key is put in its
	// place. The server recomputes D from the kc it got, which differs from the
	// D in the evidence: the backend's check of D then fails (see the backends'
	// tests); here we show the recomputed D changes.
	now := time.Unix(1_800_000_000, 0)
	ans, _ := newAnswer(t, "tok.thumb", now)
	other, _ := newAnswer(t, "tok.thumb", now)
	b, err := (evidence.Bundle{KC: other.KC, Platform: ans.Evidence}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeBundle(b, ans.Nonce, now)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(d.D, d.Bundle.Platform.Data) {
		t.Fatal("a swapped kc must not reproduce the D the platform signed")
	}
}

func TestKeyAuthorization(t *testing.T) {
	for _, c := range []struct{ tok, tp string }{{"", "x"}, {"a.b", "x"}, {"tok", ""}} {
		if _, err := KeyAuthorization(c.tok, c.tp); err == nil {
			t.Errorf("KeyAuthorization(%q, %q) accepted", c.tok, c.tp)
		}
	}
}

func TestProblems(t *testing.T) {
	p := AsProblem(errors.New("x"))
	if p.Type != BadAttestationStatement || p.Retryable() {
		t.Fatalf("unclassified error became %+v", p)
	}
	if !Internal(errors.New("down")).Retryable() || Rejected("no %s", "way").Retryable() {
		t.Fatal("only serverInternal is retryable")
	}
	if AsProblem(nil) != nil {
		t.Fatal("AsProblem(nil) != nil")
	}
}

func assertProblem(t *testing.T, err error, typ ProblemType, detail string) {
	t.Helper()
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("error %v is not a *Problem", err)
	}
	if p.Type != typ || !strings.Contains(p.Detail, detail) {
		t.Fatalf("problem = %s %q, want %s containing %q", p.Type, p.Detail, typ, detail)
	}
}

var _ = cbor.RawMessage{}
