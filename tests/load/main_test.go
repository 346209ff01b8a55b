package load

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.step.sm/crypto/x509util"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/tests/bench/rig"
)

// binary is the attest-acme binary TestMain built, for the CA and verifier
// processes.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "attest-acme-load-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := rig.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binary = filepath.Join(dir, "attest-acme")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := rig.BuildBinary(ctx, root, binary, raceEnabled); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// testTimeout bounds each test: long enough for the long load on two cores.
const testTimeout = 15 * time.Minute

// newClients registers n accounts, one per client goroutine.
func newClients(ctx context.Context, t *testing.T, directoryURL string, roots *x509.CertPool, n int) []*rig.Client {
	t.Helper()
	out := make([]*rig.Client, n)
	for i := range out {
		cl, err := rig.NewClient(ctx, directoryURL, roots)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		out[i] = cl
	}
	return out
}

// newSNPs makes one simulated SEV-SNP guest per client.
func newSNPs(t *testing.T, n int) []evidence.Attester {
	t.Helper()
	out := make([]evidence.Attester, n)
	for i := range out {
		g, err := sim.NewSNP(sim.SNPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = g
	}
	return out
}

// load is n attested issuances spread over clients, each client with its
// own attester, run as fast as they go.
type load struct {
	clients   []*rig.Client
	attesters []evidence.Attester
	n         int
	// retry is each issuance's retry hook (nil: none).
	retry func(*rig.Failure) bool
	// done counts finished issuances, successful or not.
	done atomic.Int64

	mu     sync.Mutex
	issued []*rig.Issued
	errs   []error
}

// run runs the load and waits for it; progress is sent the number of
// finished issuances after each one (without blocking).
func (l *load) run(ctx context.Context, prefix string, progress chan<- int64) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for i, cl := range l.clients {
		wg.Go(func() {
			for {
				seq := next.Add(1)
				if seq > int64(l.n) {
					return
				}
				iss, err := cl.Issue(ctx, rig.Request{
					Attester:   l.attesters[i],
					Identifier: fmt.Sprintf("%s-%d", prefix, seq),
					Retry:      l.retry,
				})
				l.mu.Lock()
				if err != nil {
					l.errs = append(l.errs, fmt.Errorf("issuance %d (client %d): %w", seq, i, err))
				} else {
					l.issued = append(l.issued, iss)
				}
				l.mu.Unlock()
				d := l.done.Add(1)
				if progress != nil {
					select {
					case progress <- d:
					default:
					}
				}
			}
		})
	}
	wg.Wait()
}

// attestedKeys checks the certificates and returns the set of keys they
// were issued for (by SPKI DER) and the count per EAR platform.
func attestedKeys(t *testing.T, issued []*rig.Issued, roots *x509.CertPool, earKey *ecdsa.PublicKey) (map[string]bool, map[string]int) {
	t.Helper()
	keys := map[string]bool{}
	platforms := map[string]int{}
	serials := map[string]string{}
	for _, iss := range issued {
		res, err := rig.CheckAttested(iss, roots, earKey)
		if err != nil {
			t.Errorf("%s: %v", iss.Identifier, err)
			continue
		}
		platforms[res.Platform]++
		serial := iss.Chain[0].SerialNumber.String()
		if other, dup := serials[serial]; dup {
			t.Errorf("serial %s issued twice: for %s and %s", serial, other, iss.Identifier)
		}
		serials[serial] = iss.Identifier
		der, err := x509.MarshalPKIXPublicKey(iss.Key.Public())
		if err != nil {
			t.Fatal(err)
		}
		keys[string(der)] = true
	}
	return keys, platforms
}

// checkStored checks the certificates step-ca stored in its database: each
// attested one (with a permanent-identifier) is for a key in keys; it
// returns how many attested certificates are stored.
func checkStored(t *testing.T, stored []*x509.Certificate, keys map[string]bool) int {
	t.Helper()
	n := 0
	for _, c := range stored {
		if !hasPermanentIdentifier(t, c) {
			continue
		}
		n++
		der, err := x509.MarshalPKIXPublicKey(c.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if !keys[string(der)] {
			t.Errorf("the CA stored certificate %s for a key no client had attested", c.SerialNumber)
		}
	}
	return n
}

// hasPermanentIdentifier reports whether c names a permanent-identifier
// (an attested certificate).
func hasPermanentIdentifier(t *testing.T, c *x509.Certificate) bool {
	t.Helper()
	sans, err := x509util.ParseSubjectAlternativeNames(c)
	if err != nil {
		t.Fatalf("certificate %s: %v", c.SerialNumber, err)
	}
	return len(sans.PermanentIdentifiers) > 0
}
