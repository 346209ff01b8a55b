package challenge

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/go-jose/go-jose/v4"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// The golden inputs (docs/protocol.md "Golden vectors"). Everything below is
// derived from them deterministically; any change in the encoding changes a
// file and fails TestGolden.
const (
	goldenToken = "DGyRejmCefe7v4NfDGDKfA"
	// goldenCertKey and goldenAccountKey are P-256 private scalars.
	goldenCertKey    = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721"
	goldenAccountKey = "519b423d715f8b581f4fa8ee59f4771a5b44c8130b4e3eacca54a56dda72b464"
	goldenIAT        = 1_800_000_000
)

// goldenPlatform is fixed platform evidence: a TSM report map whose outblob is
// a placeholder, since real reports carry randomized signatures.
func goldenPlatform(t *testing.T) evidence.Evidence {
	b, err := evidence.DetEncMode().Marshal(map[string]any{"provider": "sev_guest", "outblob": []byte("golden outblob")})
	if err != nil {
		t.Fatal(err)
	}
	return evidence.Evidence{MediaType: evidence.MediaTypeTSMReport, Data: b}
}

func p256(t *testing.T, scalar string) *ecdsa.PrivateKey {
	b, err := hex.DecodeString(scalar)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixedAttester returns fixed evidence and records the D it was asked for.
type fixedAttester struct {
	ev evidence.Evidence
	d  []byte
}

func (f *fixedAttester) BindingHash() crypto.Hash { return crypto.SHA512 }
func (f *fixedAttester) Attest(_ context.Context, d []byte) (evidence.Evidence, error) {
	f.d = d
	return f.ev, nil
}

func TestGolden(t *testing.T) {
	certKey := p256(t, goldenCertKey)
	acct := p256(t, goldenAccountKey)
	tp, err := (&jose.JSONWebKey{Key: acct.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	keyAuth, err := KeyAuthorization(goldenToken, b64url(tp))
	if err != nil {
		t.Fatal(err)
	}
	att := &fixedAttester{ev: goldenPlatform(t)}
	ans, err := NewAnswer(t.Context(), att, keyAuth, certKey.Public(), time.Unix(goldenIAT, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(att.d, ans.D) {
		t.Fatal("the attester was not asked for D")
	}
	files := []struct {
		name string
		data []byte
	}{
		{"key-authorization.txt", []byte(keyAuth + "\n")},
		{"nonce.hex", []byte(hex.EncodeToString(ans.Nonce) + "\n")},
		{"kc.cbor", ans.KC},
		{"kc.hex", []byte(hex.EncodeToString(ans.KC) + "\n")},
		{"d-sha256.hex", []byte(hex.EncodeToString(evidence.Binding(crypto.SHA256, ans.KC)) + "\n")},
		{"d-sha512.hex", []byte(hex.EncodeToString(ans.D) + "\n")},
		{"bundle.cbor", ans.Bundle},
		{"attobj.cbor", ans.AttObj},
		{"payload.json", ans.Payload},
	}
	for _, f := range files {
		path := filepath.Join("testdata", "golden", f.name)
		if *update {
			if err := os.WriteFile(path, f.data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./challenge -run TestGolden -update once)", err)
		}
		if !bytes.Equal(f.data, want) {
			t.Errorf("%s drifted from the golden vector:\n got %x\nwant %x", f.name, f.data, want)
		}
	}

	// The server side reads the golden payload back to the same key and D.
	d, bundle, err := DecodePayload(ans.Payload, keyAuth, time.Unix(goldenIAT+60, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !d.KC.Key.(*ecdsa.PublicKey).Equal(certKey.Public()) || !bytes.Equal(d.D, ans.D) || !bytes.Equal(bundle, ans.Bundle) {
		t.Fatal("decoding the golden payload did not give back the key, D and bundle")
	}
}
