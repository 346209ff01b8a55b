package verifier

import (
	"testing"
	"time"

	"github.com/veraison/ear"
)

// allStatuses accepts every status, so tests can read contraindicated EARs.
var allStatuses = []ear.TrustTier{ear.TrustTierAffirming, ear.TrustTierWarning, ear.TrustTierContraindicated, ear.TrustTierNone}

// decodeEAR checks tok's signature and nonce and returns what it says,
// whatever its status.
func decodeEAR(t testing.TB, f *fixture, tok, nonce []byte) *Result {
	t.Helper()
	c := &Checker{Key: f.signer.Public(), Now: func() time.Time { return f.now }, Accept: allStatuses}
	r, err := c.CheckWithoutKey(tok, nonce)
	if err != nil {
		t.Fatalf("EAR does not check: %v", err)
	}
	return r
}
