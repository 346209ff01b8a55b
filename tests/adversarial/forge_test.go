package adversarial_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/cmw"
	cose "github.com/veraison/go-cose"

	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/tests/internal/harness"
)

// The attacker's toolkit: each function builds one layer of an answer with
// the real encoders, so that an attack changes exactly one thing.

// enc is the deterministic CBOR encoder the project writes with.
var enc = evidence.DetEncMode()

func mustCBOR(t *testing.T, v any) []byte {
	t.Helper()
	b, err := enc.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nonceOf is N for o's challenge.
func nonceOf(t *testing.T, o *harness.Order) []byte {
	t.Helper()
	n, err := o.Nonce()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// coseKey encodes pub as a COSE_Key with go-cose (EC2, OKP), or, for RSA,
// which go-cose v1.3.0 cannot encode, as the RFC 8230 map {1: 3, -1: n,
// -2: e} with the CBOR library.
func coseKey(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	if k, ok := pub.(*rsa.PublicKey); ok {
		e := big2bytes(int64(k.E))
		return mustCBOR(t, map[int]any{1: 3, -1: k.N.Bytes(), -2: e})
	}
	k, err := cose.NewKeyFromPublic(pub)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func big2bytes(v int64) []byte {
	var out []byte
	for ; v > 0; v >>= 8 {
		out = append([]byte{byte(v)}, out...)
	}
	return out
}

// claims are kc claims an attack can change before kcOf encodes them.
type claims map[any]any

// honestClaims are the claims an honest client writes for pub and nonce.
func honestClaims(t *testing.T, pub crypto.PublicKey, nonce []byte) claims {
	t.Helper()
	return claims{
		6:   time.Now().Unix(),
		8:   map[int]cbor.RawMessage{1: coseKey(t, pub)},
		10:  nonce,
		275: evidence.IntendedUseIssuance,
	}
}

// kcOf encodes claims as a UCCS (tag 601).
func kcOf(t *testing.T, c claims) []byte {
	t.Helper()
	return mustCBOR(t, cbor.Tag{Number: evidence.TagUCCS, Content: map[any]any(c)})
}

// attestOver has a produce evidence over D = H(kc).
func attestOver(t *testing.T, ctx context.Context, a evidence.Attester, kc []byte) evidence.Evidence {
	t.Helper()
	ev, err := a.Attest(ctx, evidence.Binding(a.BindingHash(), kc))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// bundleOf encodes kc and platform evidence as a bundle (evidence.Bundle,
// which applies the size limits an honest client keeps to).
func bundleOf(t *testing.T, kc []byte, ev evidence.Evidence) []byte {
	t.Helper()
	b, err := (evidence.Bundle{KC: kc, Platform: ev}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// record is one item of a hand-made collection.
type record struct {
	label     string
	mediaType any // string, or a CoAP content-format number
	value     []byte
	indicator cmw.Indicator
	tagForm   bool
}

// collectionOf encodes records as a CMW collection with veraison/cmw, with
// none of the project's limits or rules applied.
func collectionOf(t *testing.T, ctype string, rs ...record) []byte {
	t.Helper()
	c, err := cmw.NewCollection(ctype)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		m, err := cmw.NewMonad(r.mediaType, r.value, r.indicator)
		if err != nil {
			t.Fatal(err)
		}
		if r.tagForm {
			m.UseCBORTagFormat()
		}
		if err := c.AddCollectionItem(r.label, m); err != nil {
			t.Fatal(err)
		}
	}
	b, err := c.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kcRecord and platformRecord are the honest records of a bundle.
func kcRecord(kc []byte) record {
	return record{label: evidence.LabelKC, mediaType: evidence.MediaTypeKC, value: kc, indicator: cmw.Evidence}
}

func platformRecord(ev evidence.Evidence) record {
	return record{label: evidence.LabelPlatform, mediaType: ev.MediaType, value: ev.Data, indicator: cmw.Evidence}
}

// attObjOf wraps a bundle in an attestation object (challenge.EncodeAttObj).
func attObjOf(t *testing.T, bundle []byte) []byte {
	t.Helper()
	b, err := challenge.EncodeAttObj(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payloadOf is the JWS payload {"attObj": base64url(attObj)}, without the
// size check of challenge.EncodePayload.
func payloadOf(t *testing.T, attObj []byte) []byte {
	t.Helper()
	return payloadWith(t, base64.RawURLEncoding.EncodeToString(attObj), nil)
}

// payloadWith is the JSON payload with attObj as given and extra members.
func payloadWith(t *testing.T, attObj string, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{"attObj": attObj}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fullPayload is kc -> evidence from a -> bundle -> attestation object ->
// payload, each step with the honest encoder.
func fullPayload(t *testing.T, ctx context.Context, a evidence.Attester, kc []byte) []byte {
	t.Helper()
	return payloadOf(t, attObjOf(t, bundleOf(t, kc, attestOver(t, ctx, a, kc))))
}

// honestAnswer is challenge.NewAnswer for o with o.Key and attester a.
func honestAnswer(t *testing.T, ctx context.Context, o *harness.Order, a evidence.Attester) *challenge.Answer {
	t.Helper()
	ans, err := o.Answer(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

// rawMap encodes a CBOR map from already-encoded keys and values, in the
// given order, duplicates included: the one thing the CBOR library will not
// write. The header is the major type 5 head for n < 24 pairs (RFC 8949
// §3.1).
func rawMap(t *testing.T, pairs ...[]byte) []byte {
	t.Helper()
	if len(pairs)%2 != 0 || len(pairs)/2 >= 24 {
		t.Fatalf("rawMap: %d items", len(pairs))
	}
	out := []byte{0xa0 | byte(len(pairs)/2)}
	for _, p := range pairs {
		out = append(out, p...)
	}
	return out
}

// nested returns depth CBOR arrays, each holding the next, around 0.
func nested(t *testing.T, depth int) []byte {
	t.Helper()
	var v any = 0
	for range depth {
		v = []any{v}
	}
	dm, err := cbor.EncOptions{}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := dm.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
