package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/attest-acme/attest-acme/tests/bench/rig"
)

// issuanceTimeout bounds one issuance; a hung request is an error of the run.
const issuanceTimeout = 2 * time.Minute

// dbResult is the run against one CA (one database).
type dbResult struct {
	DB string `json:"db"`
	// Server is the CA: serverOurs, or serverStock (stock step-ca serving
	// the same ca.json, http-01 only, as a baseline).
	Server string `json:"server"`
	// Cells are the measurements, by clients then mode.
	Cells []*cellResult `json:"cells"`
	// PeakRSS is the CA's VmHWM over the whole run, warm-up included;
	// PeakAnon and PeakFile the largest anonymous and file-backed RSS
	// sampled during the measurements.
	PeakRSS  int64 `json:"peakRSS"`
	PeakAnon int64 `json:"peakAnon"`
	PeakFile int64 `json:"peakFile"`
	// RSSAtEnd is the CA's VmRSS after the last measurement.
	RSSAtEnd int64 `json:"rssAtEnd"`
	// Issuances counts all issuances against this CA, warm-up included.
	Issuances int64 `json:"issuances"`
	// CAExit is how the CA exited after SIGTERM ("" for a clean exit).
	CAExit string `json:"caExit,omitempty"`
	// DBSize is the database's size on disk at the end, in bytes.
	DBSize int64 `json:"dbSize"`
}

// cellResult is one mode at one number of clients, both halves together.
type cellResult struct {
	Mode    string        `json:"mode"`
	Clients int           `json:"clients"`
	N       int           `json:"n"`
	Wall    time.Duration `json:"wall"`
	// Latencies are the issuances' durations, sorted (failures excluded).
	Latencies []time.Duration `json:"latencies"`
	// Steps are the per-step durations of the successful issuances.
	Steps        [][rig.NumSteps]time.Duration `json:"-"`
	Errors       int                           `json:"errors"`
	ErrorSamples []string                      `json:"errorSamples,omitempty"`
	// CACPU and DriverCPU are the CPU time of the CA process and of this
	// driver; MachineCPU is the whole machine's busy time (all processes).
	CACPU      time.Duration `json:"caCPU"`
	DriverCPU  time.Duration `json:"driverCPU"`
	MachineCPU time.Duration `json:"machineCPU"`
	// PeakRSS is the CA's VmHWM during this cell; PeakAnon and PeakFile
	// are the largest anonymous and file-backed RSS sampled every 50ms
	// (file-backed: mostly bbolt's mmap of its database).
	PeakRSS   int64 `json:"peakRSS"`
	PeakAnon  int64 `json:"peakAnon"`
	PeakFile  int64 `json:"peakFile"`
	Requests  int64 `json:"requests"`
	BadNonces int64 `json:"badNonces"`
	// WriteBytes is what the CA wrote to storage (/proc/PID/io).
	WriteBytes int64 `json:"writeBytes"`
	// Syncs counts the CA's fsync and fdatasync calls (perf), -1 if unknown.
	Syncs int64 `json:"syncs"`
	// VerifierSeconds and VerifierCalls come from the CA's
	// attest_acme_ca_verifier_duration_seconds histogram.
	VerifierSeconds float64 `json:"verifierSeconds"`
	VerifierCalls   float64 `json:"verifierCalls"`
}

// clientState is one client goroutine's account and platform.
type clientState struct {
	cl  *rig.Client
	snp *sim.SNP
}

// runner runs issuances against one CA.
type runner struct {
	cfg       *config
	db        string
	ca        *rig.CA
	proc      *rig.Process
	clients   []*clientState
	tpm       *tpm.Attester
	responder *rig.Responder
	prof      *profiler
	syncs     *syncCounter // nil without perf
	seq       atomic.Int64
	peak      int64
}

// The CAs a run can measure.
const (
	serverOurs  = "attest-acme"
	serverStock = "step-ca"
)

// runDB measures one CA on a database of its own. Stock step-ca (-stepca)
// is measured with http-01 only, with as many issuances as attest-acme's CA
// gets over all its modes, so that both databases grow to the same size.
func runDB(ctx context.Context, cfg *config, db, server string, tpmAtt *tpm.Attester, tpmRef *rig.TPMReference, responder *rig.Responder) (*dbResult, error) {
	name := db
	modes, scale := cfg.modes, 1
	if server == serverStock {
		name = db + "-stepca"
		modes, scale = []string{modeHTTP01}, len(cfg.modes)
	}
	dir := filepath.Join(cfg.work, name)
	metricsPort, err := rig.FreePort()
	if err != nil {
		return nil, err
	}
	ca, err := rig.InitCA(rig.CAOptions{Dir: dir, DB: db, TPM: tpmRef, MetricsPort: metricsPort})
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, db: name, ca: ca, tpm: tpmAtt, responder: responder}
	logPath := filepath.Join(cfg.work, name+"-ca.log")
	switch {
	case server == serverStock:
		if r.proc, err = rig.StartCACommand(ctx, ca, logPath, cfg.stepca, ca.Config); err != nil {
			return nil, err
		}
	case cfg.pprofDir != "":
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		port, err := rig.FreePort()
		if err != nil {
			return nil, err
		}
		ctl := "127.0.0.1:" + strconv.Itoa(port)
		if r.proc, err = rig.StartCACommand(ctx, ca, logPath, self, "serve-ca", "--config", ca.Config, "--control", ctl, "--dir", cfg.pprofDir); err != nil {
			return nil, err
		}
		r.prof = &profiler{control: "http://" + ctl, dir: cfg.pprofDir}
	default:
		if r.proc, err = rig.StartCA(ctx, cfg.bin, ca, logPath); err != nil {
			return nil, err
		}
	}
	defer r.proc.Kill()
	if cfg.perf {
		r.syncs = &syncCounter{pid: r.proc.PID(), dir: cfg.work}
	}
	log.Printf("%s: %s pid %d at %s (log %s)", name, server, r.proc.PID(), ca.Address, logPath)

	maxC := slices.Max(cfg.clients)
	r.clients = make([]*clientState, maxC)
	for i := range r.clients {
		cl, err := rig.NewClient(ctx, ca.DirectoryURL, ca.Roots)
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		snp, err := sim.NewSNP(sim.SNPOptions{})
		if err != nil {
			return nil, err
		}
		r.clients[i] = &clientState{cl: cl, snp: snp}
	}

	res := &dbResult{DB: db, Server: server}
	if cfg.warmup > 0 {
		for _, m := range modes {
			c := r.cell(ctx, m, maxC, maxC*cfg.warmup*scale)
			if c.Errors > 0 {
				return nil, fmt.Errorf("warm-up %s: %d of %d issuances failed, first: %s", m, c.Errors, c.N, c.ErrorSamples[0])
			}
		}
		log.Printf("%s: warmed up (%d issuances per mode over %d clients)", name, maxC*cfg.warmup*scale, maxC)
	}

	for _, c := range cfg.clients {
		n := cfg.n
		if c == 1 {
			n = cfg.n1
		}
		n *= scale
		// Two halves in opposite orders (ABC then CBA), so that neither
		// mode always runs on the larger database or after the other.
		acc := map[string]*cellResult{}
		forward := slices.Clone(modes)
		backward := slices.Clone(modes)
		slices.Reverse(backward)
		for h, order := range [][]string{forward, backward} {
			nh := n / 2
			if h == 1 {
				nh = n - n/2
			}
			for _, m := range order {
				label := fmt.Sprintf("%s-%s-c%d-h%d", name, m, c, h+1)
				part, err := r.measure(ctx, m, c, nh, label)
				if err != nil {
					return nil, err
				}
				acc[m] = merge(acc[m], part)
			}
		}
		for _, m := range modes {
			cr := acc[m]
			slices.Sort(cr.Latencies)
			res.Cells = append(res.Cells, cr)
			log.Printf("%s: %-7s %2d clients: p50 %6.1f ms  p99 %6.1f ms  %6.1f/s  errors %d  CA %.2f cores  driver %.2f cores  CA peak %d MiB",
				name, m, c, ms(pct(cr.Latencies, 50)), ms(pct(cr.Latencies, 99)), cr.rate(), cr.Errors,
				cores(cr.CACPU, cr.Wall), cores(cr.DriverCPU, cr.Wall), cr.PeakRSS>>20)
		}
	}
	r.foldPeak()
	res.PeakRSS = r.peak
	for _, c := range res.Cells {
		res.PeakAnon, res.PeakFile = max(res.PeakAnon, c.PeakAnon), max(res.PeakFile, c.PeakFile)
	}
	res.RSSAtEnd, _ = r.proc.RSS()
	res.Issuances = r.seq.Load()
	if err := r.proc.Stop(45 * time.Second); err != nil {
		res.CAExit = err.Error()
	}
	res.DBSize = dirSize(filepath.Join(dir, "db"))
	log.Printf("%s: CA peak RSS %.1f MiB over %d issuances; database %.1f MiB", name, float64(res.PeakRSS)/(1<<20), res.Issuances, float64(res.DBSize)/(1<<20))
	return res, nil
}

// merge adds part to acc (nil acc: part).
func merge(acc, part *cellResult) *cellResult {
	if acc == nil {
		return part
	}
	acc.N += part.N
	acc.Wall += part.Wall
	acc.Latencies = append(acc.Latencies, part.Latencies...)
	acc.Steps = append(acc.Steps, part.Steps...)
	acc.Errors += part.Errors
	acc.ErrorSamples = append(acc.ErrorSamples, part.ErrorSamples...)
	if len(acc.ErrorSamples) > 5 {
		acc.ErrorSamples = acc.ErrorSamples[:5]
	}
	acc.CACPU += part.CACPU
	acc.DriverCPU += part.DriverCPU
	acc.MachineCPU += part.MachineCPU
	acc.PeakRSS = max(acc.PeakRSS, part.PeakRSS)
	acc.PeakAnon = max(acc.PeakAnon, part.PeakAnon)
	acc.PeakFile = max(acc.PeakFile, part.PeakFile)
	acc.Requests += part.Requests
	acc.BadNonces += part.BadNonces
	acc.WriteBytes += part.WriteBytes
	if acc.Syncs < 0 || part.Syncs < 0 {
		acc.Syncs = -1
	} else {
		acc.Syncs += part.Syncs
	}
	acc.VerifierSeconds += part.VerifierSeconds
	acc.VerifierCalls += part.VerifierCalls
	return acc
}

// foldPeak folds the CA's VmHWM into the run's peak.
func (r *runner) foldPeak() {
	if p, err := r.proc.PeakRSS(); err == nil {
		r.peak = max(r.peak, p)
	}
}

// measure runs one measured cell: n issuances of mode over c clients, with
// the CPU, memory and verifier figures around it.
func (r *runner) measure(ctx context.Context, mode string, c, n int, label string) (*cellResult, error) {
	select {
	case <-r.proc.Done():
		return nil, fmt.Errorf("the CA exited (%v):\n%s", r.proc.ExitErr(), r.proc.Tail(4096))
	default:
	}
	r.foldPeak()
	if err := r.proc.ResetPeakRSS(); err != nil {
		return nil, fmt.Errorf("resetting the CA's VmHWM: %w", err)
	}
	ca0, err := r.proc.CPUTime()
	if err != nil {
		return nil, err
	}
	me0, mach0 := selfCPU(), machineBusy()
	wb0, _ := r.proc.WriteBytes()
	vs0, vc0 := r.verifierMetrics(ctx)
	if r.prof != nil {
		if err := r.prof.start(label); err != nil {
			return nil, err
		}
	}
	if r.syncs != nil {
		if err := r.syncs.start(label); err != nil {
			return nil, fmt.Errorf("perf: %w", err)
		}
	}
	stopSampling := r.sampleRSS()
	cr := r.cell(ctx, mode, c, n)
	cr.PeakAnon, cr.PeakFile = stopSampling()
	cr.Syncs = -1
	if r.syncs != nil {
		if cr.Syncs, err = r.syncs.stop(); err != nil {
			return nil, fmt.Errorf("perf: %w", err)
		}
	}
	if r.prof != nil {
		if err := r.prof.stop(); err != nil {
			return nil, err
		}
	}
	ca1, err := r.proc.CPUTime()
	if err != nil {
		return nil, err
	}
	me1, mach1 := selfCPU(), machineBusy()
	wb1, _ := r.proc.WriteBytes()
	cr.WriteBytes = wb1 - wb0
	vs1, vc1 := r.verifierMetrics(ctx)
	cr.CACPU, cr.DriverCPU, cr.MachineCPU = ca1-ca0, me1-me0, mach1-mach0
	cr.VerifierSeconds, cr.VerifierCalls = vs1-vs0, vc1-vc0
	if cr.PeakRSS, err = r.proc.PeakRSS(); err != nil {
		return nil, err
	}
	r.peak = max(r.peak, cr.PeakRSS)
	return cr, nil
}

// sampleRSS samples the CA's anonymous and file-backed RSS every 50ms
// until the function it returns is called, which returns the maxima.
func (r *runner) sampleRSS() func() (anon, file int64) {
	stop := make(chan struct{})
	done := make(chan [2]int64)
	go func() {
		var m [2]int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if a, f, err := r.proc.RSSParts(); err == nil {
				m[0], m[1] = max(m[0], a), max(m[1], f)
			}
			select {
			case <-stop:
				done <- m
				return
			case <-t.C:
			}
		}
	}()
	return func() (int64, int64) {
		close(stop)
		m := <-done
		return m[0], m[1]
	}
}

// cell runs n issuances of mode over the first c clients, as fast as they go.
func (r *runner) cell(ctx context.Context, mode string, c, n int) *cellResult {
	cr := &cellResult{Mode: mode, Clients: c, N: n}
	var next atomic.Int64
	var mu sync.Mutex
	var req0, bad0 int64
	for _, cs := range r.clients[:c] {
		req0 += cs.cl.Requests.Load()
		bad0 += cs.cl.BadNonces.Load()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, cs := range r.clients[:c] {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				seq := r.seq.Add(1)
				req := rig.Request{Identifier: "127.0.0.1", HTTP01: r.responder}
				switch mode {
				case modeSNP:
					req = rig.Request{Attester: cs.snp, Identifier: fmt.Sprintf("bench-%s-%d", r.db, seq)}
				case modeTPM:
					req = rig.Request{Attester: evidence.Attester(r.tpm), Identifier: fmt.Sprintf("bench-%s-%d", r.db, seq)}
				}
				ictx, cancel := context.WithTimeout(ctx, issuanceTimeout)
				iss, err := cs.cl.Issue(ictx, req)
				cancel()
				mu.Lock()
				if err != nil {
					cr.Errors++
					if len(cr.ErrorSamples) < 5 {
						cr.ErrorSamples = append(cr.ErrorSamples, err.Error())
					}
				} else {
					cr.Latencies = append(cr.Latencies, iss.Total)
					cr.Steps = append(cr.Steps, iss.Steps)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	cr.Wall = time.Since(start)
	for _, cs := range r.clients[:c] {
		cr.Requests += cs.cl.Requests.Load()
		cr.BadNonces += cs.cl.BadNonces.Load()
	}
	cr.Requests -= req0
	cr.BadNonces -= bad0
	return cr
}

// verifierMetrics reads the CA's appraisal time histogram (sum, count).
func (r *runner) verifierMetrics(ctx context.Context) (sum, count float64) {
	if r.ca.MetricsURL == "" {
		return 0, 0
	}
	m, err := rig.Metrics(ctx, r.ca.MetricsURL)
	if err != nil {
		return 0, 0
	}
	return m[`attest_acme_ca_verifier_duration_seconds_sum{outcome="ok"}`], m[`attest_acme_ca_verifier_duration_seconds_count{outcome="ok"}`]
}

// selfCPU is this process's CPU time (user + system), the TPM simulator and
// the http-01 responder included.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the machine's busy CPU time since boot, all CPUs: the
// first line of /proc/stat without idle and iowait.
func machineBusy() time.Duration {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0
	}
	var busy int64
	// user nice system idle iowait irq softirq steal (guest is in user).
	for i, v := range fields[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / 100
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
