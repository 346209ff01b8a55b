package tpm

import (
	"reflect"
	"testing"

	"github.com/attest-acme/attest-acme/evidence"
)

// FuzzParseQuote checks that ParseQuote never panics, accepts nothing beyond
// its bounds, and that what it accepts encodes and decodes to the same quote.
// Seeds: a fresh simulator quote and the files in
// testdata/fuzz/FuzzParseQuote (real simulator quotes and edge shapes).
func FuzzParseQuote(f *testing.F) {
	fx := newFixture(f, Config{})
	f.Add(fx.data)
	sample, err := sampleQuote().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)

	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQuote(b)
		if err != nil {
			return
		}
		if len(b) > evidence.MaxItemSize {
			t.Fatalf("accepted %d bytes", len(b))
		}
		again, err := q.Marshal()
		if err != nil {
			t.Fatalf("an accepted quote does not encode: %v", err)
		}
		q2, err := ParseQuote(again)
		if err != nil {
			t.Fatalf("an encoded quote does not parse: %v", err)
		}
		if !reflect.DeepEqual(q, q2) {
			t.Fatalf("encoding and decoding changed the quote:\n%+v\n%+v", q, q2)
		}
	})
}

// FuzzAppraise checks that Appraise never panics and that whatever it
// accepts names the pinned AK and came with a non-empty D. The seed is a
// fresh simulator quote and its D.
func FuzzAppraise(f *testing.F) {
	fx := newFixture(f, Config{})
	ak := fx.a.AKPublic()
	v := pinned(f, ak)
	f.Add(fx.data, fx.d)

	f.Fuzz(func(t *testing.T, b, d []byte) {
		claims, err := v.Appraise(b, d)
		if err != nil {
			return
		}
		if len(d) == 0 || !sameKey(claims.AK, ak) {
			t.Fatalf("accepted a quote by %s with D %x", claims.AKFingerprint, d)
		}
		if _, err := ParseQuote(b); err != nil {
			t.Fatalf("accepted a quote ParseQuote rejects: %v", err)
		}
	})
}
