package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-configfs-tsm/configfs/linuxtsm"

	"github.com/attest-acme/attest-acme/acmeclient"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/attest-acme/attest-acme/evidence/tsm"
)

// The attesters the client subcommands offer (--attester).
const (
	attesterTPM    = "tpm"
	attesterTSM    = "tsm"
	attesterSimSNP = "sim-snp"
	attesterSimTDX = "sim-tdx"
)

// clientFlags are the flags obtain, renew and run share. Names follow lego
// (--server, --email, --path, --key-type, --eab/--kid/--hmac, --accept-tos,
// --http.port, --run-hook) and step (--root via --ca-root, --exec) where
// they have one.
type clientFlags struct {
	server, dir, email          string
	eab                         bool
	kid, hmac                   string
	acceptTOS                   bool
	caRoot                      string
	identifier                  string
	dns                         listFlag
	keyType                     string
	attester, tpmDevice, tpmTCP string
	tpmPCRs                     string
	httpPort                    string
	httpTimeout, pollTimeout    time.Duration
	quiet, json                 bool
	hook                        string
	hookTimeout                 time.Duration
}

// listFlag is a repeatable flag that also takes comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// register adds the shared flags to fs.
func (f *clientFlags) register(fs *flag.FlagSet) {
	str := func(p *string, def, usage string, names ...string) {
		for _, n := range names {
			fs.StringVar(p, n, def, usage)
		}
	}
	str(&f.server, "", "ACME directory URL of the CA (https)", "server", "s")
	str(&f.dir, "", "directory for the account and certificates (lego's layout)", "dir", "path")
	str(&f.email, "", "account contact email; also names the account in --dir", "email", "m")
	fs.BoolVar(&f.eab, "eab", false, "use external account binding (with --kid and --hmac)")
	str(&f.kid, "", "key identifier for external account binding", "kid")
	str(&f.hmac, "", "MAC key for external account binding (base64url)", "hmac")
	fs.BoolVar(&f.acceptTOS, "accept-tos", false, "agree to the CA's terms of service")
	str(&f.caRoot, "", "PEM file of root certificates to trust for the CA's TLS (default: the system's)", "ca-root")
	str(&f.identifier, "", "permanent identifier to certify (device-attest-01)", "identifier")
	fs.Var(&f.dns, "dns", "DNS name to add to the order, validated with http-01 (repeatable, or comma-separated)")
	str(&f.keyType, string(acmeclient.EC256), "certificate key type: ec256, ec384, ed25519, rsa2048, rsa3072, rsa4096", "key-type", "k")
	str(&f.attester, "", "platform attester: tpm, tsm (configfs-tsm), sim-snp, sim-tdx (simulated, for tests and demos)", "attester")
	str(&f.tpmDevice, tpm.DefaultDevice, "TPM device for --attester tpm (\"simulator\": the in-process simulator)", "tpm")
	str(&f.tpmTCP, "", "TPM over TCP for --attester tpm, such as swtpm: HOST:PORT (control port PORT+1)", "tpm-tcp")
	str(&f.tpmPCRs, "", "PCRs to quote, as tpm2-tools writes them (default sha256:0-7)", "tpm-pcrs")
	str(&f.httpPort, ":80", "[interface]:port the http-01 solver listens on, for --dns names", "http.port")
	fs.DurationVar(&f.httpTimeout, "http-timeout", acmeclient.DefaultHTTPTimeout, "bound on each HTTP exchange with the CA")
	fs.DurationVar(&f.pollTimeout, "poll-timeout", acmeclient.DefaultPollTimeout, "bound on waiting for each authorization and for the order")
	fs.BoolVar(&f.quiet, "quiet", false, "print nothing but errors")
	fs.BoolVar(&f.json, "json", false, "print one JSON object per step on stdout, then a result object")
	str(&f.hook, "", "command run with /bin/sh -c after each new certificate, with ATTEST_ACME_* and LEGO_CERT_* variables naming the files", "run-hook", "exec")
	fs.DurationVar(&f.hookTimeout, "hook-timeout", acmeclient.DefaultHookTimeout, "bound on the hook command")
}

// check validates the shared flags.
func (f *clientFlags) check(fs *flag.FlagSet) error {
	var missing []string
	for name, v := range map[string]string{"--server": f.server, "--dir": f.dir, "--identifier": f.identifier, "--attester": f.attester} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slicesSort(missing)
		return usageError{"missing " + strings.Join(missing, ", ")}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	switch f.attester {
	case attesterTPM, attesterTSM, attesterSimSNP, attesterSimTDX:
	default:
		return usageError{fmt.Sprintf("--attester %q: want tpm, tsm, sim-snp or sim-tdx", f.attester)}
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if f.attester != attesterTPM && (set["tpm"] || set["tpm-tcp"] || set["tpm-pcrs"]) {
		return usageError{"--tpm, --tpm-tcp and --tpm-pcrs go with --attester tpm"}
	}
	if set["tpm"] && set["tpm-tcp"] {
		return usageError{"give --tpm or --tpm-tcp, not both"}
	}
	if f.quiet && f.json {
		return usageError{"give --quiet or --json, not both"}
	}
	if f.eab != (f.kid != "" && f.hmac != "") {
		return usageError{"--eab needs --kid and --hmac, and they need --eab"}
	}
	if _, err := acmeclient.ParseKeyType(f.keyType); err != nil {
		return usageError{"--key-type: " + err.Error()}
	}
	return nil
}

// parseFlags parses args into fs, mapping errors to usage errors; it
// returns errHelp for -h.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{err.Error()}
	}
	return nil
}

// errHelp ends a subcommand after its help was printed.
var errHelp = errors.New("help printed")

// clientCmd runs the client subcommands; its fields are what they take from
// the machine, so that tests can replace them.
type clientCmd struct {
	// openAttester opens the platform attester the flags name; close
	// releases it.
	openAttester func(ctx context.Context, f *clientFlags, e env) (a evidence.Attester, close func(), err error)
}

func newClientCmd() *clientCmd { return &clientCmd{openAttester: openAttester} }

// attesterError is a missing or unusable platform attester: a local
// precondition (exit code 3).
type attesterError struct{ err error }

func (e attesterError) Error() string { return e.err.Error() }
func (e attesterError) Unwrap() error { return e.err }

// openAttester opens the attester --attester names.
func openAttester(ctx context.Context, f *clientFlags, e env) (evidence.Attester, func(), error) {
	switch f.attester {
	case attesterTPM:
		spec := f.tpmDevice
		if f.tpmTCP != "" {
			spec = "tcp://" + f.tpmTCP
		}
		var cfg tpm.Config
		if f.tpmPCRs != "" {
			sel, err := tpm.ParsePCRSelection(f.tpmPCRs)
			if err != nil {
				return nil, nil, usageError{"--tpm-pcrs: " + err.Error()}
			}
			cfg.PCRs = sel
		}
		tr, err := tpm.Open(ctx, spec)
		if err != nil {
			return nil, nil, attesterError{fmt.Errorf("no TPM at %s: %w (name one with --tpm DEVICE or --tpm-tcp HOST:PORT)", spec, err)}
		}
		a, err := tpm.NewAttester(tr, cfg)
		if err != nil {
			tr.Close()
			return nil, nil, attesterError{fmt.Errorf("TPM at %s: %w", spec, err)}
		}
		return a, func() { a.Close(); tr.Close() }, nil
	case attesterTSM:
		c, err := linuxtsm.MakeClient()
		if err != nil {
			return nil, nil, attesterError{fmt.Errorf("no configfs-tsm: %w (is this a confidential VM with configfs mounted on /sys/kernel/config?)", err)}
		}
		return tsm.NewAttester(c), func() {}, nil
	case attesterSimSNP, attesterSimTDX:
		if !f.quiet && !f.json {
			fmt.Fprintf(e.stderr, "attest-acme: --attester %s is a SIMULATED platform: its evidence proves nothing outside tests and demos\n", f.attester)
		}
		if f.attester == attesterSimSNP {
			g, err := sim.NewSNP(sim.SNPOptions{})
			return g, func() {}, err
		}
		g, err := sim.NewTDX(sim.TDXOptions{})
		return g, func() {}, err
	}
	return nil, nil, usageError{fmt.Sprintf("--attester %q", f.attester)}
}

// newClient builds the acmeclient for the flags, with progress going to p;
// the attester is opened for each issuance, and only then.
func (c *clientCmd) newClient(f *clientFlags, e env, p *progress) (*acmeclient.Client, error) {
	var roots *x509.CertPool
	if f.caRoot != "" {
		b, err := os.ReadFile(f.caRoot)
		if err != nil {
			return nil, fmt.Errorf("--ca-root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--ca-root %s: no PEM certificate in it", f.caRoot)
		}
	}
	cfg := acmeclient.Config{
		DirectoryURL: f.server,
		Storage:      acmeclient.NewStorage(f.dir),
		OpenAttester: func(ctx context.Context) (evidence.Attester, func(), error) {
			return c.openAttester(ctx, f, e)
		},
		HTTPClient:    acmeclient.NewHTTPClient(roots, f.httpTimeout),
		UserAgent:     "attest-acme",
		Email:         f.email,
		AcceptTOS:     f.acceptTOS,
		HTTP01Address: f.httpPort,
		PollTimeout:   f.pollTimeout,
		Progress:      p.event,
	}
	if f.eab {
		cfg.EAB = &acmeclient.EAB{KeyID: f.kid, HMACKey: f.hmac}
	}
	cl, err := acmeclient.New(cfg)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	return cl, nil
}

// hook is the hook the flags ask for, or nil.
func (f *clientFlags) hookFunc(e env) acmeclient.Hook {
	if f.hook == "" {
		return nil
	}
	return acmeclient.CommandHook(f.hook, f.hookTimeout, e.stderr, e.stderr)
}

// clientError maps an error of the client subcommands to its exit code, and
// adds the hint a person needs.
func (f *clientFlags) clientError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var (
		ue usageError
		re *acmeclient.RequestError
		ce *acmeclient.ConnError
		se *acmeclient.StorageError
		ae attesterError
	)
	switch {
	case errors.As(err, &ue):
		return err
	case errors.As(err, &re):
		return usageError{err.Error()}
	case ctx.Err() != nil:
		return codedError{exitFailure, fmt.Errorf("interrupted (%v); the certificate files were left as they were", context.Cause(ctx))}
	case errors.As(err, &ce) && ce.Untrusted && f.caRoot == "":
		return codedError{exitFailure, fmt.Errorf("%w (give the CA's root certificate with --ca-root FILE)", err)}
	case errors.As(err, &ce) && ce.Untrusted:
		return codedError{exitFailure, fmt.Errorf("%w (the roots in %s do not verify it)", err, f.caRoot)}
	case errors.As(err, &se), errors.As(err, &ae):
		return codedError{exitInternal, err}
	}
	return codedError{exitFailure, err}
}

// progress prints the client's events: a line per step on stderr for a
// person, a JSON object per step on stdout for a script, or nothing.
type progress struct {
	mu     sync.Mutex
	e      env
	f      *clientFlags
	daemon bool // show failures of retried steps and hooks as they happen
}

func (p *progress) event(ev acmeclient.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.f.quiet:
	case p.f.json:
		b, err := json.Marshal(ev)
		if err == nil {
			fmt.Fprintf(p.e.stdout, "%s\n", b)
		}
	case ev.Err == nil:
		fmt.Fprintf(p.e.stderr, "  %-9s %8s  %s\n", ev.Stage, formatDuration(ev.Duration), ev.Message)
	case p.daemon && (ev.Stage == acmeclient.StageRetry || ev.Stage == acmeclient.StageHook):
		// Anything else that fails ends the command with one message.
		fmt.Fprintf(p.e.stderr, "  %-9s %8s  %s: %v\n", ev.Stage, formatDuration(ev.Duration), ev.Message, ev.Err)
	}
}

// formatDuration writes a step's duration for a terminal.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// result prints what a subcommand ended with: the stored set for a person
// (stdout), or a result object for a script.
func (p *progress) result(sv *acmeclient.Saved, renewed bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.f.quiet:
	case p.f.json:
		out := map[string]any{"stage": "result", "status": "ok"}
		if err != nil {
			out["status"], out["error"] = "error", err.Error()
			var ce codedError
			if errors.As(err, &ce) {
				out["exit_code"] = ce.code
			}
		}
		if sv != nil {
			out["identifier"], out["serial"] = sv.Identifier, sv.Serial
			out["not_before"], out["not_after"] = sv.NotBefore, sv.NotAfter
			out["renewed"], out["paths"] = renewed, sv.Paths
		}
		b, _ := json.Marshal(out)
		fmt.Fprintf(p.e.stdout, "%s\n", b)
	case err == nil && sv != nil:
		state := "new certificate " + sv.Serial
		if !renewed {
			state = "certificate " + sv.Serial + " not due for renewal"
		}
		fmt.Fprintf(p.e.stdout, "permanent-identifier %q: %s, valid until %s\n  certificate  %s\n  key          %s\n  EAR          %s\n  resource     %s\n",
			sv.Identifier, state, sv.NotAfter.Format(time.RFC3339), sv.Paths.Cert, sv.Paths.Key, sv.Paths.EAR, sv.Paths.Resource)
	}
}

// writeUsage prints a subcommand's usage and flags.
func writeUsage(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprint(w, usage)
	fmt.Fprintln(w, "\nflags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func slicesSort(s []string) { sortStrings(s) }
