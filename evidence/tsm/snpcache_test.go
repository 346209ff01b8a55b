package tsm_test

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tsm"
)

// TestSNPChainCacheKeepsEveryCheck: once a VCEK's chain is verified, later
// reports under it are still checked for their own signature, and the chain's
// validity is still checked against the clock.
func TestSNPChainCacheKeepsEveryCheck(t *testing.T) {
	var now atomic.Int64
	now.Store(testNow().Unix())
	v, err := tsm.NewSNPVerifier(tsm.SNPOptions{Roots: testRoots(t), Now: func() time.Time { return time.Unix(now.Load(), 0) }})
	if err != nil {
		t.Fatal(err)
	}
	g := newSNP(t, sim.SNPOptions{})
	d := testD(0x31)

	// First appraisal: the full chain check, which fills the cache.
	r := parseReport(t, attest(t, g, d))
	if _, err := v.Appraise(r.OutBlob, r.AuxBlob, d); err != nil {
		t.Fatal(err)
	}
	// Same VCEK, a report altered after signing: its own signature fails.
	tampered := bytes.Clone(r.OutBlob)
	tampered[0x90] ^= 1
	if _, err := v.Appraise(tampered, r.AuxBlob, d); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("tampered report under a cached VCEK: %v, want a signature error", err)
	}
	// Same VCEK, a fresh report: still fine.
	r2 := parseReport(t, attest(t, g, testD(0x32)))
	if _, err := v.Appraise(r2.OutBlob, r2.AuxBlob, testD(0x32)); err != nil {
		t.Fatalf("second report under a cached VCEK: %v", err)
	}
	// Past the chain's validity the cached chain is not used.
	now.Store(time.Date(2060, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	if _, err := v.Appraise(r2.OutBlob, r2.AuxBlob, testD(0x32)); err == nil {
		t.Fatal("a report was accepted after its chain expired, from the cache")
	}
	// A VCEK no root vouches for is never cached as good.
	now.Store(testNow().Unix())
	keys, err := sim.NewSNPKeys()
	if err != nil {
		t.Fatal(err)
	}
	bad := parseReport(t, attest(t, newSNP(t, sim.SNPOptions{Keys: keys}), d))
	for range 2 {
		if _, err := v.Appraise(bad.OutBlob, bad.AuxBlob, d); err == nil {
			t.Fatal("a report under an untrusted chain was accepted")
		}
	}
}
