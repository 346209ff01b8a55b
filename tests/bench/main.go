// Command bench is attest-acme's benchmark driver (docs/performance.md). In
// one run, for each database (bbolt, badgerv2), it serves one development CA
// as a separate process of the real binary (`attest-acme ca --config`) on
// loopback and measures, side by side on that CA:
//
//   - attested issuance: device-attest-01 (format cmw) with a simulated
//     SEV-SNP guest per client, and with the TPM simulator (one per process,
//     shared by the clients, so its quotes take turns);
//   - plain http-01 issuance of an IP identifier (127.0.0.1, RFC 8738),
//     answered by this process on 127.0.0.1:80, where step-ca fetches it;
//
// at 1, 8 and 32 concurrent clients (one reused account each): latency p50
// and p99, throughput, errors, the CA's and this driver's CPU, the rest of
// the machine's CPU, and the CA's peak RSS (VmHWM). Then it runs the
// verifier benchmark (go test -bench BenchmarkVerifier ./verifier) and
// writes everything as markdown, optionally into docs/performance.md.
//
// Usage (scripts/bench.sh is the documented command):
//
//	go run ./tests/bench [-quick] [-dbs bbolt,badgerv2] [-update docs/performance.md]
//
// `bench serve-ca` is the CA with profiling hooks, for -pprof runs: it
// serves ca.json as `attest-acme ca --config` does.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/attest-acme/attest-acme/tests/bench/rig"
)

// Issuance modes.
const (
	modeHTTP01 = "http-01"
	modeSNP    = "sev-snp"
	modeTPM    = "tpm"
)

// config is the command line.
type config struct {
	bin           string
	dbs           []string
	clients       []int
	modes         []string
	n1, n         int
	warmup        int
	quick         bool
	http01Addr    string
	work          string
	keep          bool
	out           string
	update        string
	jsonOut       string
	pprofDir      string
	verifierBench bool
	perf          bool
	stepca        string
	benchtime     string
	command       string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve-ca" {
		os.Exit(serveCA(os.Args[2:]))
	}
	log.SetFlags(log.Ltime)
	log.SetPrefix("bench: ")
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		log.Printf("FAILED: %v", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	c := &config{}
	var dbs, clients, modes string
	fs.StringVar(&c.bin, "bin", "", "attest-acme binary to run the CA with (default: go build ./cmd/attest-acme into the work directory)")
	fs.StringVar(&dbs, "dbs", "bbolt,badgerv2", "databases to run, one CA each: bbolt, badgerv2")
	fs.StringVar(&clients, "clients", "1,8,32", "numbers of concurrent clients")
	fs.StringVar(&modes, "modes", "http-01,sev-snp,tpm", "issuances to measure: http-01, sev-snp, tpm")
	fs.IntVar(&c.n1, "n1", 300, "issuances per mode with 1 client")
	fs.IntVar(&c.n, "n", 1200, "issuances per mode with more than 1 client")
	fs.IntVar(&c.warmup, "warmup", 2, "unmeasured issuances per client and mode before measuring")
	fs.BoolVar(&c.quick, "quick", false, "a short run for CI: -n1 8 -n 32 -warmup 1 -benchtime 20x")
	fs.StringVar(&c.http01Addr, "http01-addr", "127.0.0.1:80", "where to answer http-01 (step-ca fetches port 80)")
	fs.StringVar(&c.work, "work", "", "work directory (default: a new temporary directory)")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory (CA directories, logs)")
	fs.StringVar(&c.out, "out", "", "write the markdown results to this file (default: standard output)")
	fs.StringVar(&c.update, "update", "", "replace the results section of this markdown file (docs/performance.md)")
	fs.StringVar(&c.jsonOut, "json", "", "write the raw results as JSON to this file")
	fs.StringVar(&c.pprofDir, "pprof", "", "profile: run the CA as `bench serve-ca` and write CPU, block and mutex profiles of the CA and the driver per measurement into this directory")
	fs.StringVar(&c.stepca, "stepca", "", "also measure stock step-ca (this binary, v0.30.2) on each database as a baseline: http-01 only, as many issuances as attest-acme's CA gets")
	fs.BoolVar(&c.perf, "perf", perfAvailable(), "count the CA's fsync and fdatasync calls with perf (default: on when perf can)")
	fs.BoolVar(&c.verifierBench, "verifier-bench", true, "run go test -bench BenchmarkVerifier ./verifier and include it")
	fs.StringVar(&c.benchtime, "benchtime", "2s", "-benchtime of the verifier benchmark")
	fs.StringVar(&c.command, "command", "", "the command to print in the report (default: this one)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("n1", func() { c.n1 = 8 })
		def("n", func() { c.n = 32 })
		def("warmup", func() { c.warmup = 1 })
		def("benchtime", func() { c.benchtime = "20x" })
	}
	c.dbs = splitList(dbs)
	for _, d := range c.dbs {
		if d != rig.BBolt && d != rig.BadgerV2 {
			return nil, fmt.Errorf("-dbs: %q is not %s or %s", d, rig.BBolt, rig.BadgerV2)
		}
	}
	c.modes = splitList(modes)
	for _, m := range c.modes {
		if m != modeHTTP01 && m != modeSNP && m != modeTPM {
			return nil, fmt.Errorf("-modes: %q is not %s, %s or %s", m, modeHTTP01, modeSNP, modeTPM)
		}
	}
	for _, s := range splitList(clients) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-clients: %q is not a positive number", s)
		}
		c.clients = append(c.clients, n)
	}
	if len(c.dbs) == 0 || len(c.modes) == 0 || len(c.clients) == 0 {
		return nil, errors.New("-dbs, -modes and -clients must each name at least one")
	}
	if c.n1 < 2 || c.n < 2 || c.warmup < 0 {
		return nil, errors.New("-n1 and -n must be at least 2 (each measurement runs in two halves), -warmup not negative")
	}
	if c.command == "" {
		c.command = "go run ./tests/bench " + strings.Join(args, " ")
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func run(ctx context.Context, cfg *config) error {
	root, err := rig.ModuleRoot()
	if err != nil {
		return err
	}
	if cfg.work == "" {
		if cfg.work, err = os.MkdirTemp("", "attest-acme-bench-"); err != nil {
			return err
		}
		if !cfg.keep {
			defer os.RemoveAll(cfg.work)
		}
	} else if err := os.MkdirAll(cfg.work, 0o700); err != nil {
		return err
	}
	log.Printf("work directory %s", cfg.work)
	if cfg.bin == "" {
		cfg.bin = filepath.Join(cfg.work, "attest-acme")
		log.Printf("building %s", cfg.bin)
		if err := rig.BuildBinary(ctx, root, cfg.bin, false); err != nil {
			return err
		}
	}
	if cfg.pprofDir != "" {
		if err := os.MkdirAll(cfg.pprofDir, 0o755); err != nil {
			return err
		}
	}

	rep := &report{Started: time.Now(), Machine: machineInfo(root), Command: cfg.command, Config: reportConfig{
		Clients: cfg.clients, Modes: cfg.modes, N1: cfg.n1, N: cfg.n, Warmup: cfg.warmup, Quick: cfg.quick,
		Profiled: cfg.pprofDir != "",
	}}

	// The TPM simulator is one per process: open it once, for every CA.
	var tpmAtt *tpm.Attester
	var tpmRef *rig.TPMReference
	if slices.Contains(cfg.modes, modeTPM) {
		dev, err := tpm.OpenSimulator()
		if err != nil {
			return fmt.Errorf("mode tpm: %w (drop it with -modes)", err)
		}
		defer dev.Close()
		if tpmAtt, err = tpm.NewAttester(dev, tpm.Config{}); err != nil {
			return err
		}
		defer tpmAtt.Close()
		if tpmRef, err = rig.ReferenceOf(ctx, tpmAtt); err != nil {
			return err
		}
	}
	var responder *rig.Responder
	if slices.Contains(cfg.modes, modeHTTP01) {
		if responder, err = rig.ListenHTTP01(cfg.http01Addr); err != nil {
			return fmt.Errorf("mode http-01: answering on %s (step-ca fetches port 80; run as root, or drop http-01 with -modes): %w", cfg.http01Addr, err)
		}
		defer responder.Close()
	}

	for _, db := range cfg.dbs {
		res, err := runDB(ctx, cfg, db, serverOurs, tpmAtt, tpmRef, responder)
		if err != nil {
			return fmt.Errorf("%s: %w", db, err)
		}
		rep.DBs = append(rep.DBs, res)
		if cfg.stepca != "" {
			if !slices.Contains(cfg.modes, modeHTTP01) {
				return errors.New("-stepca needs the http-01 mode")
			}
			res, err := runDB(ctx, cfg, db, serverStock, nil, nil, responder)
			if err != nil {
				return fmt.Errorf("%s, stock step-ca: %w", db, err)
			}
			rep.DBs = append(rep.DBs, res)
		}
	}
	if cfg.verifierBench {
		log.Printf("verifier benchmark (-benchtime %s)", cfg.benchtime)
		vb, err := runVerifierBench(ctx, root, cfg.benchtime)
		if err != nil {
			return err
		}
		rep.Verifier = vb
	}
	rep.Finished = time.Now()

	md := rep.markdown()
	if cfg.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	if cfg.update != "" {
		if err := updateDoc(cfg.update, md); err != nil {
			return err
		}
		log.Printf("results written into %s", cfg.update)
	}
	var w io.Writer = os.Stdout
	if cfg.out != "" {
		f, err := os.Create(cfg.out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if cfg.out != "" || cfg.update == "" {
		if _, err := io.WriteString(w, md); err != nil {
			return err
		}
	}
	if n := rep.errors(); n > 0 {
		return fmt.Errorf("%d issuances failed (see the report)", n)
	}
	return nil
}
