package psa

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The committed test IAK, claims template and CoMIDs live in
// testenv/veraison; they must describe the same device, or the deployment
// appraises our tokens as "no trust anchor" or "unrecognised software".
var testenvDir = filepath.Join("..", "..", "..", "..", "testenv", "veraison")

func readTestenv(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenvDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type comidDoc struct {
	Triples struct {
		AttesterVerificationKeys []struct {
			Environment comidEnv `json:"environment"`
			Keys        []struct {
				Type  string `json:"type"`
				Value string `json:"value"`
			} `json:"verification-keys"`
		} `json:"attester-verification-keys"`
		ReferenceValues []struct {
			Environment  comidEnv `json:"environment"`
			Measurements []struct {
				Key struct {
					Value struct {
						Label    string `json:"label"`
						Version  string `json:"version"`
						SignerID string `json:"signer-id"`
					} `json:"value"`
				} `json:"key"`
				Value struct {
					Digests []string `json:"digests"`
				} `json:"value"`
			} `json:"measurements"`
		} `json:"reference-values"`
	} `json:"triples"`
}

type comidEnv struct {
	Class struct {
		ID struct {
			Value string `json:"value"`
		} `json:"id"`
	} `json:"class"`
	Instance struct {
		Value string `json:"value"`
	} `json:"instance"`
}

type claimsDoc struct {
	ImplID     string `json:"psa-implementation-id"`
	Components []struct {
		Type     string `json:"measurement-type"`
		Value    string `json:"measurement-value"`
		Version  string `json:"version"`
		SignerID string `json:"signer-id"`
	} `json:"psa-software-components"`
}

func TestCommittedEndorsementsMatchTestKeyAndClaims(t *testing.T) {
	key, err := LoadIAK(readTestenv(t, "testdata/psa-iak.test.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := PublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := InstanceID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	var ta, rv comidDoc
	if err := json.Unmarshal(readTestenv(t, "endorsements/comid-psa-ta.json"), &ta); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(readTestenv(t, "endorsements/comid-psa-refval.json"), &rv); err != nil {
		t.Fatal(err)
	}
	var claims claimsDoc
	if err := json.Unmarshal(readTestenv(t, "testdata/psa-claims.json"), &claims); err != nil {
		t.Fatal(err)
	}

	if n := len(ta.Triples.AttesterVerificationKeys); n != 1 {
		t.Fatalf("trust anchor CoMID has %d keys, want 1", n)
	}
	avk := ta.Triples.AttesterVerificationKeys[0]
	if len(avk.Keys) != 1 || strings.TrimSpace(avk.Keys[0].Value) != strings.TrimSpace(string(pubPEM)) {
		t.Errorf("trust anchor key is not the test IAK's public key:\n%s", pubPEM)
	}
	if got, want := avk.Environment.Instance.Value, base64.StdEncoding.EncodeToString(inst); got != want {
		t.Errorf("trust anchor instance ueid = %s, want %s (InstanceID of the test IAK)", got, want)
	}
	if avk.Environment.Class.ID.Value != claims.ImplID {
		t.Errorf("trust anchor impl-id %s differs from the claims' %s", avk.Environment.Class.ID.Value, claims.ImplID)
	}

	if len(rv.Triples.ReferenceValues) != 1 {
		t.Fatalf("reference value CoMID has %d triples, want 1", len(rv.Triples.ReferenceValues))
	}
	rvt := rv.Triples.ReferenceValues[0]
	if rvt.Environment.Class.ID.Value != claims.ImplID {
		t.Errorf("reference value impl-id %s differs from the claims' %s", rvt.Environment.Class.ID.Value, claims.ImplID)
	}
	if len(rvt.Measurements) != len(claims.Components) {
		t.Fatalf("%d reference values for %d software components", len(rvt.Measurements), len(claims.Components))
	}
	for i, m := range rvt.Measurements {
		c := claims.Components[i]
		if m.Key.Value.Label != c.Type || m.Key.Value.Version != c.Version || m.Key.Value.SignerID != c.SignerID {
			t.Errorf("component %d: reference %+v differs from claims %+v", i, m.Key.Value, c)
		}
		if len(m.Value.Digests) != 1 || m.Value.Digests[0] != "sha-256:"+c.Value {
			t.Errorf("component %d: reference digests %v, claims measurement %s", i, m.Value.Digests, c.Value)
		}
	}
}
