package load

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"github.com/attest-acme/attest-acme/tests/bench/rig"
)

// ACME problem types the fault tests expect.
const (
	problemServerInternal = "urn:ietf:params:acme:error:serverInternal"
	problemOrderNotReady  = "urn:ietf:params:acme:error:orderNotReady"
)

// maxAttempts bounds the retries of one step (100ms apart).
const maxAttempts = 600

// processes is a CA (and maybe a verifier service) run as processes of the
// real binary, in a test's directory.
type processes struct {
	t        *testing.T
	ca       *rig.CA
	caProc   *rig.Process
	verifier *rig.Process
}

// startProcesses writes a development CA on bbolt and serves it; with
// withVerifier, the CA calls attest-acme's verifier service, started first.
func startProcesses(ctx context.Context, t *testing.T, withVerifier bool) *processes {
	t.Helper()
	o := rig.CAOptions{Dir: t.TempDir(), DB: rig.BBolt, NoRequestLog: true}
	var err error
	if o.MetricsPort, err = rig.FreePort(); err != nil {
		t.Fatal(err)
	}
	if withVerifier {
		if o.VerifierPort, err = rig.FreePort(); err != nil {
			t.Fatal(err)
		}
		o.VerifierTimeout = "3s"
	}
	ca, err := rig.InitCA(o)
	if err != nil {
		t.Fatal(err)
	}
	p := &processes{t: t, ca: ca}
	if withVerifier {
		p.startVerifier(ctx)
	}
	p.startCA(ctx)
	t.Cleanup(func() {
		if p.caProc != nil {
			p.caProc.Kill()
		}
		if p.verifier != nil {
			p.verifier.Kill()
		}
	})
	return p
}

func (p *processes) startCA(ctx context.Context) {
	p.t.Helper()
	proc, err := rig.StartCA(ctx, binary, p.ca, filepath.Join(p.ca.Dir, "ca.log"))
	if err != nil {
		p.t.Fatal(err)
	}
	p.caProc = proc
}

func (p *processes) startVerifier(ctx context.Context) {
	p.t.Helper()
	proc, err := rig.StartVerifier(ctx, binary, p.ca, filepath.Join(p.ca.Dir, "verifier.log"))
	if err != nil {
		p.t.Fatal(err)
	}
	p.verifier = proc
}

// stopCA stops the CA gracefully; it must exit cleanly (with -race, a
// data race makes it exit with status 66).
func (p *processes) stopCA() {
	p.t.Helper()
	if err := p.caProc.Stop(45 * time.Second); err != nil {
		p.t.Errorf("the CA did not exit cleanly: %v\n%s", err, p.caProc.Tail(8192))
	}
	p.caProc = nil
}

// metric reads one series of the CA's metrics.
func (p *processes) metric(ctx context.Context, series string) float64 {
	p.t.Helper()
	m, err := rig.Metrics(ctx, p.ca.MetricsURL)
	if err != nil {
		p.t.Fatal(err)
	}
	return m[series]
}

// waitFor waits until the load has finished at least n issuances.
func waitFor(ctx context.Context, t *testing.T, progress <-chan int64, l *load, n int64) {
	t.Helper()
	for l.done.Load() < n {
		select {
		case <-progress:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("the load stopped at %d issuances: %v", l.done.Load(), ctx.Err())
		}
	}
}

// TestVerifierKilledUnderLoad kills the verifier service (SIGKILL) in the
// middle of the load, keeps it down until every client has seen a failed
// challenge, and restarts it. Every challenge answered while it is down
// must fail with serverInternal naming the verifier and stay pending, and
// its order must refuse to be finalized; clients retry the challenge, and
// once the verifier is back every issuance completes. The CA counts as
// retryable exactly the failures the clients saw, and stores exactly the
// certificates the clients received.
func TestVerifierKilledUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	p := startProcesses(ctx, t, true)

	var mu sync.Mutex
	var seen, unexpected []string
	down := make(chan struct{}) // closed when the verifier is killed
	l := &load{clients: newClients(ctx, t, p.ca.DirectoryURL, p.ca.Roots, faultClients), n: faultIssuances}
	l.attesters = newSNPs(t, faultClients)
	l.retry = func(f *rig.Failure) bool {
		report := func(format string, a ...any) bool {
			mu.Lock()
			defer mu.Unlock()
			unexpected = append(unexpected, fmt.Sprintf("%s attempt %d: ", f.Step, f.Attempt)+fmt.Sprintf(format, a...))
			return false
		}
		select {
		case <-down:
		default:
			return report("failed while the verifier was up: %v", f.Err)
		}
		if f.Step != rig.StepChallenge {
			return report("only the challenge may fail when the verifier is down: %v", f.Err)
		}
		prob, ok := rig.Problem(f.Err)
		if !ok || prob.ProblemType != problemServerInternal || prob.StatusCode != 500 {
			return report("want a 500 serverInternal problem, got %v", f.Err)
		}
		if !strings.Contains(prob.Detail, "verifier") || !strings.Contains(prob.Detail, "retry") {
			return report("the problem does not say the verifier failed and to retry: %q", prob.Detail)
		}
		// The challenge stays pending (read through the authorization: a
		// POST-as-GET to a device-attest-01 challenge is an empty answer).
		az, err := f.Client.ACME.GetAuthorization(ctx, f.AuthzURL)
		if err != nil {
			return report("reading the authorization: %v", err)
		}
		for _, ch := range az.Challenges {
			if ch.Type == "device-attest-01" && ch.Status != xacme.StatusPending {
				return report("challenge is %s after a serverInternal, want pending", ch.Status)
			}
		}
		if az.Status != xacme.StatusPending {
			return report("authorization is %s after a serverInternal, want pending", az.Status)
		}
		// No certificate: finalize is refused, even with the attested key.
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, f.Key)
		if err != nil {
			return report("CSR: %v", err)
		}
		if _, _, err := f.Client.ACME.CreateOrderCert(ctx, f.Order.FinalizeURL, csr, true); err == nil {
			return report("the CA issued a certificate for an order whose challenge failed")
		} else if fp, ok := rig.Problem(err); !ok || fp.ProblemType != problemOrderNotReady {
			return report("finalize after a failed challenge: want orderNotReady, got %v", err)
		}
		mu.Lock()
		seen = append(seen, prob.Detail)
		mu.Unlock()
		return f.Attempt < maxAttempts
	}

	progress := make(chan int64, 1)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		l.run(ctx, "verifier-fault", progress)
	}()

	waitFor(ctx, t, progress, l, int64(faultIssuances/4))
	before := l.done.Load()
	// down first: a challenge that fails between the kill and the close
	// would otherwise count as failing while the verifier was up.
	close(down)
	p.verifier.Kill()
	t.Logf("verifier killed after %d issuances", before)
	// Keep it down until every client has seen a failure, so the outage
	// surely met requests in flight and new ones.
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(seen) + len(unexpected)
		mu.Unlock()
		if n >= faultClients || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	during := l.done.Load()
	p.startVerifier(ctx)
	mu.Lock()
	failedDown := len(seen)
	mu.Unlock()
	t.Logf("verifier restarted after %d failed challenges; %d issuances finished meanwhile", failedDown, during-before)
	<-loadDone

	for _, u := range unexpected {
		t.Error(u)
	}
	for _, err := range l.errs {
		t.Error(err)
	}
	if len(seen) == 0 {
		t.Fatal("no challenge failed while the verifier was down: the test did not test anything")
	}
	if len(l.issued) != faultIssuances {
		t.Fatalf("%d of %d issuances succeeded", len(l.issued), faultIssuances)
	}
	if after := l.done.Load() - during; after == 0 {
		t.Error("no issuance finished after the verifier came back")
	}
	keys, _ := attestedKeys(t, l.issued, p.ca.Roots, p.ca.EARKey)
	retryable := p.metric(ctx, `attest_acme_ca_challenges_total{reason="verifier_unavailable",result="retryable"}`)
	if int(retryable) != len(seen) {
		t.Errorf("the CA counted %v retryable challenges, the clients saw %d serverInternal answers", retryable, len(seen))
	}
	p.stopCA()
	stored, err := rig.StoredCertificates(p.ca.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	if n := checkStored(t, stored, keys); n != faultIssuances {
		t.Errorf("the CA stored %d attested certificates, want exactly the %d the clients received", n, faultIssuances)
	}
}

// TestCARestartUnderLoad stops the CA process gracefully (SIGTERM) at a
// quarter of the load and kills it (SIGKILL) at half, restarting it on the
// same database each time. Clients retry whatever step failed; only
// transport errors and server errors may occur, only once the CA went down;
// every issuance completes, every certificate is for its attested key, and
// every attested certificate the CA stored is for a key a client attested.
func TestCARestartUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	p := startProcesses(ctx, t, false)

	var mu sync.Mutex
	var failures, unexpected []string
	restarted := make(chan struct{}) // closed when the CA first goes down
	l := &load{clients: newClients(ctx, t, p.ca.DirectoryURL, p.ca.Roots, faultClients), n: faultIssuances}
	l.attesters = newSNPs(t, faultClients)
	l.retry = func(f *rig.Failure) bool {
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-restarted:
		default:
			unexpected = append(unexpected, fmt.Sprintf("%s failed before any restart: %v", f.Step, f.Err))
			return false
		}
		if !transient(f.Err) {
			unexpected = append(unexpected, fmt.Sprintf("%s attempt %d: not a transport or server error: %v", f.Step, f.Attempt, f.Err))
			return false
		}
		failures = append(failures, fmt.Sprintf("%s: %v", f.Step, f.Err))
		return f.Attempt < maxAttempts
	}

	progress := make(chan int64, 1)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		l.run(ctx, "ca-restart", progress)
	}()
	for i, how := range []string{"SIGTERM", "SIGKILL"} {
		waitFor(ctx, t, progress, l, int64(faultIssuances*(i+1)/4))
		if i == 0 {
			close(restarted)
			p.stopCA()
		} else {
			p.caProc.Kill()
		}
		t.Logf("CA stopped with %s after %d issuances", how, l.done.Load())
		time.Sleep(300 * time.Millisecond) // let clients meet the outage
		p.startCA(ctx)
	}
	<-loadDone

	for _, u := range unexpected {
		t.Error(u)
	}
	for _, err := range l.errs {
		t.Error(err)
	}
	t.Logf("%d steps failed and were retried", len(failures))
	kinds := map[string]int{}
	for _, f := range failures {
		kinds[kind(f)]++
	}
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		t.Logf("  %3d × %s", kinds[k], k)
	}
	if len(failures) == 0 {
		t.Error("no request failed while the CA was down: the test did not test anything")
	}
	if len(l.issued) != faultIssuances {
		t.Fatalf("%d of %d issuances succeeded", len(l.issued), faultIssuances)
	}
	keys, _ := attestedKeys(t, l.issued, p.ca.Roots, p.ca.EARKey)
	p.stopCA()
	stored, err := rig.StoredCertificates(p.ca.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	// A CA killed between signing and answering may have signed a
	// certificate the client never got (it finalizes again): never for a
	// key that was not attested.
	if n := checkStored(t, stored, keys); n < faultIssuances {
		t.Errorf("the CA stored %d attested certificates, fewer than the %d the clients received", n, faultIssuances)
	} else if n > faultIssuances {
		t.Logf("the CA stored %d attested certificates for %d issuances (signed, then killed before answering)", n, faultIssuances)
	}
}

// kind shortens a failure to its step and the end of its error, without
// the URLs and IDs that differ between requests.
func kind(f string) string {
	step, msg, _ := strings.Cut(f, ": ")
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return step + ": " + msg
}

// transient reports whether err is what a client meets while the CA is
// down or restarting: a transport error, or a 5xx answer.
func transient(err error) bool {
	if prob, ok := rig.Problem(err); ok {
		return prob.StatusCode >= 500
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection reset")
}
