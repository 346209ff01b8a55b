package acmeclient_test

import (
	"context"
	"crypto"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/acmeclient"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
)

// flakyAttester fails its first n attestations, then attests with a.
type flakyAttester struct {
	a     evidence.Attester
	fails atomic.Int32
}

func (f *flakyAttester) BindingHash() crypto.Hash { return f.a.BindingHash() }

func (f *flakyAttester) Attest(ctx context.Context, d []byte) (evidence.Evidence, error) {
	if f.fails.Add(-1) >= 0 {
		return evidence.Evidence{}, errors.New("the platform is busy")
	}
	return f.a.Attest(ctx, d)
}

// TestRunRetriesWithBackoff checks that the daemon retries a failed
// issuance with a growing, capped backoff, reports each failure, and then
// issues and runs the hook.
func TestRunRetriesWithBackoff(t *testing.T) {
	ca := startCA(t, caOptions{})
	g, err := sim.NewSNP(sim.SNPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fa := &flakyAttester{a: g}
	fa.fails.Store(3)
	cl, events := ca.client(t, t.TempDir(), fa)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	issued := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- cl.Run(ctx, acmeclient.RunOptions{
			Request:    acmeclient.Request{Identifier: "vm-retry"},
			MinBackoff: 20 * time.Millisecond,
			MaxBackoff: 50 * time.Millisecond,
			Rand:       func() float64 { return 0.999 },
			Hook: func(context.Context, *acmeclient.Saved) error {
				once.Do(func() { close(issued) })
				return nil
			},
		})
	}()
	select {
	case <-issued:
	case err := <-done:
		t.Fatalf("Run returned: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatalf("no issuance within 60s; stages %v", events.stages())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	var backoffs []time.Duration
	for _, e := range events.snapshot() {
		if e.Stage != acmeclient.StageRetry {
			continue
		}
		var ee *acmeclient.EvidenceError
		if !errors.As(e.Err, &ee) {
			t.Errorf("retry after %v, want the evidence failure", e.Err)
		}
		d, err := time.ParseDuration(e.Fields["backoff"])
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := strconv.Atoi(e.Fields["failures"]); n != len(backoffs)+1 {
			t.Errorf("failure count %q, want %d", e.Fields["failures"], len(backoffs)+1)
		}
		backoffs = append(backoffs, d)
	}
	if len(backoffs) != 3 {
		t.Fatalf("%d retries reported, want 3", len(backoffs))
	}
	// 20ms, 40ms, then capped at 50ms (each just under, with r close to 1).
	if !(backoffs[0] < backoffs[1] && backoffs[1] < backoffs[2] && backoffs[2] <= 50*time.Millisecond && backoffs[2] > 40*time.Millisecond) {
		t.Errorf("backoffs %v: want growing, capped at 50ms", backoffs)
	}
}

// TestRunKeepsMatchingCertificate checks that the daemon keeps a stored
// certificate made for the same request and waits for its renewal time,
// but replaces one made for another request at once.
func TestRunKeepsMatchingCertificate(t *testing.T) {
	ca := startCA(t, caOptions{})
	g, err := sim.NewTDX(sim.TDXOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cl, _ := ca.client(t, dir, g)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cl.Obtain(ctx, acmeclient.Request{Identifier: "vm-keep"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		req     acmeclient.Request
		obtains bool
	}{
		{"same request", acmeclient.Request{Identifier: "vm-keep"}, false},
		{"other key type", acmeclient.Request{Identifier: "vm-keep", KeyType: acmeclient.EC384}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events := &eventLog{}
			waiting := make(chan struct{})
			var once sync.Once
			cl, _ := ca.client(t, dir, g, func(c *acmeclient.Config) {
				c.Progress = func(e acmeclient.Event) {
					events.add(e)
					if e.Stage == acmeclient.StageWait {
						once.Do(func() { close(waiting) })
					}
				}
			})
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- cl.Run(runCtx, acmeclient.RunOptions{Request: tc.req}) }()
			select {
			case <-waiting:
			case err := <-done:
				t.Fatalf("Run returned: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("Run never waited")
			}
			stop()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := slices.Contains(events.stages(), "finalize"); got != tc.obtains {
				t.Errorf("issued %v, want %v (stages %v)", got, tc.obtains, events.stages())
			}
		})
	}
}
