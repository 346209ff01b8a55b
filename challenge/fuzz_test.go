package challenge

import (
	"os"
	"testing"
	"time"
)

// FuzzParseAttObj: no input may panic or yield a bundle without an error-free
// parse of fmt and attStmt.
func FuzzParseAttObj(f *testing.F) {
	if b, err := os.ReadFile("testdata/golden/attobj.cbor"); err == nil {
		f.Add(b)
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		bundle, err := ParseAttObj(b)
		if err == nil && len(bundle) == 0 {
			t.Fatal("empty bundle accepted")
		}
	})
}

// FuzzDecodePayload runs the whole server-side decode on arbitrary payloads.
func FuzzDecodePayload(f *testing.F) {
	if b, err := os.ReadFile("testdata/golden/payload.json"); err == nil {
		f.Add(b)
	}
	keyAuth, _ := os.ReadFile("testdata/golden/key-authorization.txt")
	ka := string(keyAuth)
	if len(ka) > 0 {
		ka = ka[:len(ka)-1]
	}
	now := time.Unix(goldenIAT+60, 0)
	f.Fuzz(func(t *testing.T, p []byte) {
		d, _, err := DecodePayload(p, ka, now)
		if err == nil && (d.KC == nil || d.KC.Key == nil || len(d.D) == 0) {
			t.Fatal("decoded without a key or D")
		}
	})
}
