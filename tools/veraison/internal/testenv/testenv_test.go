package testenv

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/veraison/corim/corim"
)

func TestInitStoresCreatesUpstreamTables(t *testing.T) {
	dir := t.TempDir()
	if err := InitStores(dir); err != nil {
		t.Fatal(err)
	}
	for _, s := range AllStores() {
		db, err := sql.Open("sqlite3", StorePath(dir, s))
		if err != nil {
			t.Fatal(err)
		}
		// The schema is the one vts reads: kvstore(kv_key, kv_val).
		if _, err := db.Exec(`INSERT INTO kvstore (kv_key, kv_val) VALUES ('k', 'v')`); err != nil {
			t.Errorf("%s: %v", s, err)
		}
		db.Close()
	}
}

func TestInitStoresRejectsExistingStore(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(StorePath(dir, StoreEndorsements), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := InitStores(dir)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("InitStores over an existing store: err = %v, want 'already exists'", err)
	}
}

func TestWriteEARKeyPublicFilesMatchPrivateKey(t *testing.T) {
	dir := t.TempDir()
	files, err := WriteEARKey(dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privJSON, err := os.ReadFile(files.PrivateJWK)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.ParseKey(privJSON)
	if err != nil {
		t.Fatal(err)
	}
	var raw ecdsa.PrivateKey
	if err := priv.Raw(&raw); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(files.PrivateJWK); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("private JWK mode = %v (%v), want 0600", st.Mode().Perm(), err)
	}

	pubJSON, err := os.ReadFile(files.PublicJWK)
	if err != nil {
		t.Fatal(err)
	}
	var pubDoc map[string]any
	if err := json.Unmarshal(pubJSON, &pubDoc); err != nil {
		t.Fatal(err)
	}
	if _, ok := pubDoc["d"]; ok {
		t.Error("public JWK carries the private scalar d")
	}
	if pubDoc["alg"] != "ES256" || pubDoc["crv"] != "P-256" {
		t.Errorf("public JWK alg/crv = %v/%v, want ES256/P-256", pubDoc["alg"], pubDoc["crv"])
	}
	pubJWK, err := jwk.ParseKey(pubJSON)
	if err != nil {
		t.Fatal(err)
	}
	var pubRaw ecdsa.PublicKey
	if err := pubJWK.Raw(&pubRaw); err != nil {
		t.Fatal(err)
	}
	if !raw.PublicKey.Equal(&pubRaw) {
		t.Error("public JWK is not the private key's public key")
	}

	pemBytes, err := os.ReadFile(files.PublicPEM)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemBytes)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		t.Fatalf("public PEM: no PUBLIC KEY block")
	}
	pk, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !raw.PublicKey.Equal(pk) {
		t.Error("public PEM is not the private key's public key")
	}

	if _, err := WriteEARKey(dir, rand.Reader); err == nil {
		t.Error("WriteEARKey overwrote existing key files")
	}
}

const testCorim = `{"corim-id": "5c57e8f4-46cd-421b-91c9-08cf93e13cfc", "profile": "http://arm.com/psa/iot/1"}`

const testComid = `{
  "tag-identity": {"id": "43BBE37F-2E61-4B33-AED3-53CFF1428B16", "version": 0},
  "triples": {"reference-values": [{
    "environment": {"class": {"id": {"type": "psa.impl-id", "value": "YWNtZS1pbXBsZW1lbnRhdGlvbi1pZC0wMDAwMDAwMDE="}}},
    "measurements": [{
      "key": {"type": "psa.refval-id", "value": {"label": "BL", "signer-id": "rLsRx+TaIXIFUjzkzhokWuGiOa48a/2eeHH35di66Gs="}},
      "value": {"digests": ["sha-256:h0KPxSKAPTEGXnvOPPA/5HUJZjHl4Hu9eg/eYMTPJcc="]}
    }]
  }]}
}`

func TestCompileCoRIMRoundTrips(t *testing.T) {
	b, err := CompileCoRIM([]byte(testCorim), []byte(testComid))
	if err != nil {
		t.Fatal(err)
	}
	var uc corim.UnsignedCorim
	if err := uc.FromCBOR(b); err != nil {
		t.Fatal(err)
	}
	if err := uc.Valid(); err != nil {
		t.Fatal(err)
	}
	p, err := uc.Profile.Get()
	if err != nil || p != "http://arm.com/psa/iot/1" {
		t.Errorf("profile = %q (%v), want the PSA profile", p, err)
	}
	if len(uc.Tags) != 1 || !bytes.Equal(uc.Tags[0][:3], corim.ComidTag) {
		t.Errorf("tags = %d, want one tagged CoMID", len(uc.Tags))
	}
}

func TestCompileCoRIMRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		corim  string
		comids []string
		want   string
	}{
		{"no comid", testCorim, nil, "no CoMID"},
		{"bad corim json", `{`, []string{testComid}, "CoRIM template"},
		{"bad comid json", testCorim, []string{`{"triples": 3}`}, "decoding CoMID 0"},
		{"comid without triples", testCorim, []string{`{"tag-identity": {"id": "43BBE37F-2E61-4B33-AED3-53CFF1428B16"}}`}, "missing mandatory field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var docs [][]byte
			for _, c := range tc.comids {
				docs = append(docs, []byte(c))
			}
			_, err := CompileCoRIM([]byte(tc.corim), docs...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	ports, err := FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] || p <= 0 {
			t.Fatalf("ports = %v: duplicate or invalid", ports)
		}
		seen[p] = true
	}
	if _, err := FreePorts(0); err == nil {
		t.Error("FreePorts(0) succeeded")
	}
}

func TestWaitReady(t *testing.T) {
	states := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != WellKnownMediaType {
			http.Error(w, "bad accept", http.StatusNotAcceptable)
			return
		}
		select {
		case s := <-states:
			if s == "500" {
				http.Error(w, "boom", http.StatusInternalServerError)
				return
			}
			fmt.Fprintf(w, `{"service-state": %q}`, s)
		default:
			fmt.Fprint(w, `{"service-state": "READY"}`)
		}
	}))
	defer srv.Close()

	t.Run("becomes ready after errors", func(t *testing.T) {
		states <- "500"
		states <- "DOWN"
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := WaitReady(ctx, srv.Client(), time.Millisecond, srv.URL+WellKnownVerification); err != nil {
			t.Fatal(err)
		}
		if len(states) != 0 {
			t.Errorf("%d states not consumed", len(states))
		}
	})

	t.Run("gives up and names the last state", func(t *testing.T) {
		stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"service-state": "INITIALIZING"}`)
		}))
		defer stuck.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := WaitReady(ctx, stuck.Client(), time.Millisecond, srv.URL, stuck.URL)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "INITIALIZING") {
			t.Fatalf("err = %v, want deadline exceeded naming INITIALIZING", err)
		}
	})

	t.Run("no url", func(t *testing.T) {
		if err := WaitReady(context.Background(), srv.Client(), time.Millisecond); err == nil {
			t.Fatal("WaitReady with no URL succeeded")
		}
	})
}

func TestServiceStateRejectsBadDocuments(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"not json", `nope`, "decoding"},
		{"no state", `{}`, "no service-state"},
		{"too big", `{"x":"` + strings.Repeat("a", maxWellKnownBody) + `"}`, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, tc.body)
			}))
			defer srv.Close()
			_, err := ServiceState(context.Background(), srv.Client(), srv.URL)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestStorePathIsUnderDir(t *testing.T) {
	if got, want := StorePath("/s", StorePolicies), filepath.Join("/s", "po-store.sql"); got != want {
		t.Errorf("StorePath = %q, want %q", got, want)
	}
}
