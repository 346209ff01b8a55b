package acmeclient_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/acmeclient"
	"github.com/attest-acme/attest-acme/evidence/sim"
)

// issuance is what a hook saw of one issuance.
type issuance struct {
	serial, nonce, evidence string
	key                     crypto.PublicKey
	certOnDisk              []byte
}

// TestRunRenewsWithFreshEvidence runs the daemon against a CA that issues
// certificates of a few seconds: it obtains, then renews at least twice,
// each time with a new nonce, new evidence and (by default) a new key, or
// the same key with ReuseKey; the hook runs after each issuance and sees
// the new files; cancelling the context stops the daemon cleanly.
func TestRunRenewsWithFreshEvidence(t *testing.T) {
	ca := startCA(t, caOptions{lifetime: 4 * time.Second})
	g, err := sim.NewSNP(sim.SNPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, reuse := range []bool{false, true} {
		name := map[bool]string{false: "new key each time", true: "reuse key"}[reuse]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cl, events := ca.client(t, dir, g)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var mu sync.Mutex
			var seen []issuance
			enough := make(chan struct{})
			hook := func(_ context.Context, sv *acmeclient.Saved) error {
				disk, err := os.ReadFile(sv.Paths.Cert)
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, issuance{sv.Serial, sv.Nonce, sv.EvidenceSHA256, sv.Leaf().PublicKey, disk})
				if len(seen) == 3 {
					close(enough)
				}
				return nil
			}
			done := make(chan error, 1)
			go func() {
				done <- cl.Run(ctx, acmeclient.RunOptions{
					Request:    acmeclient.Request{Identifier: "vm-run"},
					ReuseKey:   reuse,
					Hook:       hook,
					MinBackoff: 100 * time.Millisecond,
					MaxBackoff: time.Second,
				})
			}()
			select {
			case <-enough:
			case err := <-done:
				t.Fatalf("Run returned early: %v", err)
			case <-time.After(90 * time.Second):
				t.Fatalf("no second renewal within 90s; stages %v", events.stages())
			}
			cancel()
			defer func() {
				if t.Failed() {
					for _, e := range events.snapshot() {
						t.Logf("%s %s %s %v", e.Time.Format("15:04:05.000"), e.Stage, e.Message, e.Err)
					}
				}
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run after cancel: %v, want nil", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after cancel")
			}

			mu.Lock()
			defer mu.Unlock()
			for i := 1; i < len(seen); i++ {
				prev, cur := seen[i-1], seen[i]
				if cur.serial == prev.serial || cur.nonce == prev.nonce || cur.evidence == prev.evidence {
					t.Errorf("issuance %d: serial %s nonce %s evidence %s, same as before (%s %s %s)",
						i, cur.serial, cur.nonce, cur.evidence, prev.serial, prev.nonce, prev.evidence)
				}
				sameKey := cur.key.(interface{ Equal(crypto.PublicKey) bool }).Equal(prev.key)
				if sameKey != reuse {
					t.Errorf("issuance %d: same key %v, want %v", i, sameKey, reuse)
				}
			}
			for i, s := range seen {
				chain, err := x509.ParseCertificate(pemBody(t, s.certOnDisk))
				if err != nil || chain.SerialNumber.Text(16) != s.serial {
					t.Errorf("hook %d saw certificate file of serial %v (%v), want %s", i, chain, err, s.serial)
				}
			}
			// A renewal may fail and be retried on a loaded machine (the
			// 4-second certificate can expire before it arrives); the
			// daemon must then have recovered, which the three issuances
			// above show. Each retry is logged.
			for _, e := range events.events {
				if e.Stage == acmeclient.StageRetry {
					t.Logf("a renewal was retried: %v", e.Err)
				}
			}
			// The daemon stopped with a consistent set stored.
			if _, err := acmeclient.NewStorage(dir).Load("vm-run"); err != nil {
				t.Errorf("Load after the daemon stopped: %v", err)
			}
		})
	}
}

// TestRenew renews only when due, with a new key unless asked to keep it.
func TestRenew(t *testing.T) {
	ca := startCA(t, caOptions{})
	g, err := sim.NewTDX(sim.TDXOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cl, _ := ca.client(t, dir, g)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if _, _, err := cl.Renew(ctx, acmeclient.RenewOptions{Identifier: "vm-renew"}); !errors.Is(err, acmeclient.ErrNoCertificate) {
		t.Fatalf("Renew with nothing stored: %v, want ErrNoCertificate", err)
	}
	first, err := cl.Obtain(ctx, acmeclient.Request{Identifier: "vm-renew", KeyType: acmeclient.EC384})
	if err != nil {
		t.Fatal(err)
	}
	// A day's certificate has more than a third of its lifetime left.
	sv, renewed, err := cl.Renew(ctx, acmeclient.RenewOptions{Identifier: "vm-renew"})
	if err != nil || renewed || sv.Serial != first.Serial {
		t.Fatalf("Renew when not due: renewed %v serial %s (%v), want the same certificate", renewed, sv.Serial, err)
	}
	// Due when more than the remaining lifetime is asked for.
	second, renewed, err := cl.Renew(ctx, acmeclient.RenewOptions{Identifier: "vm-renew", ExpiresIn: 48 * time.Hour})
	if err != nil || !renewed {
		t.Fatalf("Renew when due: renewed %v (%v)", renewed, err)
	}
	if second.Serial == first.Serial || second.Nonce == first.Nonce || second.EvidenceSHA256 == first.EvidenceSHA256 {
		t.Error("the renewal did not get a new certificate with fresh evidence")
	}
	if samePub(second.Key.Public(), first.Key.Public()) {
		t.Error("the renewal kept the key; a new one is the default")
	}
	if second.KeyType != acmeclient.EC384 {
		t.Errorf("renewed key type %s, want the stored one (ec384)", second.KeyType)
	}
	ca.checkIssued(t, second, "vm-renew", "tdx")
	third, renewed, err := cl.Renew(ctx, acmeclient.RenewOptions{Identifier: "vm-renew", Force: true, ReuseKey: true})
	if err != nil || !renewed {
		t.Fatalf("Renew --force --reuse-key: renewed %v (%v)", renewed, err)
	}
	if !samePub(third.Key.Public(), second.Key.Public()) || third.Nonce == second.Nonce {
		t.Error("--reuse-key: want the same key with a fresh nonce")
	}
	ca.checkIssued(t, third, "vm-renew", "tdx")
}

func samePub(a, b crypto.PublicKey) bool {
	return a.(interface{ Equal(crypto.PublicKey) bool }).Equal(b)
}

func pemBody(t *testing.T, b []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM")
	}
	return blk.Bytes
}
