package evidence

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"
)

func testKeys(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	r2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{"ec256": p256, "ec384": p384, "ed25519": ed, "rsa2048": r2048}
}

func TestKCRoundTrip(t *testing.T) {
	nonce := bytes.Repeat([]byte{7}, NonceSize)
	now := time.Unix(1_800_000_000, 0)
	for name, k := range testKeys(t) {
		t.Run(name, func(t *testing.T) {
			b, err := NewKC(k.Public(), nonce, now)
			if err != nil {
				t.Fatal(err)
			}
			kc, err := ParseKC(b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(kc.Nonce, nonce) || !kc.IssuedAt.Equal(now) || !bytes.Equal(kc.Raw, b) {
				t.Fatalf("round trip changed the kc: %+v", kc)
			}
			if !kc.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
				t.Fatal("round trip changed the key")
			}
		})
	}
}

func TestBundleRoundTrip(t *testing.T) {
	b := Bundle{KC: []byte{0xd9, 0x02, 0x59, 0xa0}, Platform: Evidence{MediaType: MediaTypeTSMReport, Data: []byte("report")}}
	raw, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.KC, b.KC) || got.Platform.MediaType != b.Platform.MediaType || !bytes.Equal(got.Platform.Data, b.Platform.Data) {
		t.Fatalf("round trip changed the bundle: %+v", got)
	}
}
