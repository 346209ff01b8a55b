package evidence

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"testing"
	"time"
)

// FuzzParseKC: no input panics, and whatever parses re-encodes to a kc that
// parses to the same key and nonce.
func FuzzParseKC(f *testing.F) {
	if b, err := os.ReadFile("../challenge/testdata/golden/kc.cbor"); err == nil {
		f.Add(b)
	}
	for _, k := range testKeys(f) {
		b, err := NewKC(k.Public(), bytes.Repeat([]byte{3}, NonceSize), time.Unix(1_800_000_000, 0))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		kc, err := ParseKC(b)
		if err != nil {
			return
		}
		again, err := NewKC(kc.Key, kc.Nonce, kc.IssuedAt)
		if err != nil {
			t.Fatalf("a parsed kc does not re-encode: %v", err)
		}
		kc2, err := ParseKC(again)
		if err != nil || !bytes.Equal(kc2.Nonce, kc.Nonce) || !kc2.IssuedAt.Equal(kc.IssuedAt) {
			t.Fatalf("re-encoded kc differs: %v", err)
		}
	})
}

// FuzzParseBundle: no input panics; a parsed bundle re-encodes and parses back
// to the same items.
func FuzzParseBundle(f *testing.F) {
	if b, err := os.ReadFile("../challenge/testdata/golden/bundle.cbor"); err == nil {
		f.Add(b)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kc, _ := NewKC(k.Public(), make([]byte, NonceSize), time.Unix(1_800_000_000, 0))
	b, _ := Bundle{KC: kc, Platform: Evidence{MediaType: MediaTypeTPMQuote, Data: []byte{0xa0}}}.Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		bu, err := ParseBundle(b)
		if err != nil {
			return
		}
		again, err := bu.Marshal()
		if err != nil {
			t.Fatalf("a parsed bundle does not re-encode: %v", err)
		}
		bu2, err := ParseBundle(again)
		if err != nil || !bytes.Equal(bu2.KC, bu.KC) || !bytes.Equal(bu2.Platform.Data, bu.Platform.Data) || bu2.Platform.MediaType != bu.Platform.MediaType {
			t.Fatalf("re-encoded bundle differs: %v", err)
		}
	})
}
