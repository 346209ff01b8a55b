package challenge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"
)

// BenchmarkNewAnswer: the client's protocol work for one challenge — kc, D,
// bundle, attestation object, payload — around an attester that costs
// nothing (each backend's own benchmark measures its evidence).
func BenchmarkNewAnswer(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewAnswer(context.Background(), echoAttester{}, "token.thumbprint", k.Public(), now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePayload: the server's protocol work before appraisal —
// payload, attestation object, bundle, kc, nonce check, D.
func BenchmarkDecodePayload(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	ans, err := NewAnswer(context.Background(), echoAttester{}, "token.thumbprint", k.Public(), now)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodePayload(ans.Payload, "token.thumbprint", now); err != nil {
			b.Fatal(err)
		}
	}
}
