package main

import (
	"context"
	"time"

	"github.com/attest-acme/attest-acme/acmeclient"
)

const runUsage = `usage: attest-acme run --server URL --identifier ID --attester tpm|tsm|sim-snp|sim-tdx --dir DIR [flags]

Keeps a certificate for ID, as a daemon: obtains one (unless DIR holds one
made for the same request and CA), then renews it at --renew-at of each
certificate's lifetime, up to --jitter of the lifetime earlier at random,
each time with fresh evidence and a new key (unless --reuse-key). Failures
are retried with exponential backoff, capped at --max-backoff. The hook runs
after each new certificate; its failure is reported, not fatal. SIGTERM or
SIGINT stop it; a renewal in flight is abandoned and leaves DIR as it was.

exit codes: 0 stopped by a signal; 2 bad command line; 3 DIR unreadable
`

// runRun is the "run" subcommand.
func runRun(ctx context.Context, e env) error { return newClientCmd().run(ctx, e) }

func (c *clientCmd) run(ctx context.Context, e env) error {
	var f clientFlags
	fs := newClientFlagSet("run", &f)
	renewAt := fs.Float64("renew-at", acmeclient.DefaultRenewAt, "fraction of the lifetime at which to renew")
	jitter := fs.Float64("jitter", acmeclient.DefaultJitter, "fraction of the lifetime by which a renewal may come earlier, at random (0: none)")
	reuseKey := fs.Bool("reuse-key", false, "keep the certificate key across renewals (default: a new one each time)")
	minBackoff := fs.Duration("min-backoff", acmeclient.DefaultMinBackoff, "first wait after a failure")
	maxBackoff := fs.Duration("max-backoff", acmeclient.DefaultMaxBackoff, "longest wait after failures")
	if err := parseFlags(fs, e.args); err == errHelp {
		writeUsage(e.stderr, fs, runUsage)
		return nil
	} else if err != nil {
		return err
	}
	if err := f.check(fs); err != nil {
		return err
	}
	j := *jitter
	if j == 0 {
		j = -1 // RunOptions: negative is none, zero the default
	}
	kt, _ := acmeclient.ParseKeyType(f.keyType)
	o := acmeclient.RunOptions{
		Request:    acmeclient.Request{Identifier: f.identifier, DNSNames: f.dns, KeyType: kt},
		RenewAt:    *renewAt,
		Jitter:     j,
		ReuseKey:   *reuseKey,
		MinBackoff: *minBackoff,
		MaxBackoff: *maxBackoff,
		Hook:       f.hookFunc(e),
	}
	if *renewAt <= 0 || *renewAt >= 1 || *jitter < 0 || *jitter >= *renewAt || *maxBackoff < *minBackoff || *minBackoff <= 0 {
		return usageError{"want 0 < --renew-at < 1, 0 <= --jitter < --renew-at, 0 < --min-backoff <= --max-backoff"}
	}
	p := &progress{e: e, f: &f, daemon: true}
	cl, err := c.newClient(&f, e, p)
	if err != nil {
		return f.clientError(ctx, err)
	}
	start := time.Now()
	err = cl.Run(ctx, o)
	if err != nil {
		err = f.clientError(context.Background(), err)
	}
	if !f.quiet && !f.json && err == nil {
		e.stderr.Write([]byte("attest-acme run: stopped after " + time.Since(start).Round(time.Second).String() + "\n"))
	}
	return err
}
