package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/attest-acme/attest-acme/acmeclient"
)

const renewUsage = `usage: attest-acme renew --server URL --identifier ID --attester tpm|tsm|sim-snp|sim-tdx --dir DIR [flags]

Renews the certificate obtain stored in DIR for ID when less than
--expires-in of its validity remains (default: a third of its lifetime), or
always with --force: fresh evidence, and a new key unless --reuse-key. The
DNS names and key type stay those of the stored certificate unless --dns or
--key-type says otherwise. The hook runs only when a new certificate was
stored. The attester is opened only when a renewal is due.

exit codes: 0 renewed or not due; 1 failed (nothing stored for ID, the CA
refused, could not be reached or is not trusted, bad evidence, hook failed);
2 bad command line; 3 local precondition missing (no TPM, no configfs-tsm,
DIR not readable or writable)
`

// runRenew is the "renew" subcommand.
func runRenew(ctx context.Context, e env) error { return newClientCmd().renew(ctx, e) }

func (c *clientCmd) renew(ctx context.Context, e env) error {
	var f clientFlags
	fs := newClientFlagSet("renew", &f)
	expiresIn := fs.Duration("expires-in", 0, "renew when less than this remains (default: a third of the lifetime)")
	force := fs.Bool("force", false, "renew whatever remains")
	reuseKey := fs.Bool("reuse-key", false, "keep the certificate key (default: a new one)")
	if err := parseFlags(fs, e.args); err == errHelp {
		writeUsage(e.stderr, fs, renewUsage)
		return nil
	} else if err != nil {
		return err
	}
	if err := f.check(fs); err != nil {
		return err
	}
	if *expiresIn < 0 {
		return usageError{"--expires-in must not be negative"}
	}
	o := acmeclient.RenewOptions{Identifier: f.identifier, ExpiresIn: *expiresIn, Force: *force, ReuseKey: *reuseKey}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "key-type", "k":
			o.KeyType, _ = acmeclient.ParseKeyType(f.keyType)
		case "dns":
			o.DNSNames = f.dns
		}
	})
	p := &progress{e: e, f: &f}
	sv, renewed, err := c.doRenew(ctx, &f, e, p, o)
	if errors.Is(err, acmeclient.ErrNoCertificate) {
		err = codedError{exitFailure, fmt.Errorf("no certificate for %q in %s: run attest-acme obtain first", f.identifier, f.dir)}
	}
	err = f.clientError(ctx, err)
	p.result(sv, renewed, err)
	return err
}

func (c *clientCmd) doRenew(ctx context.Context, f *clientFlags, e env, p *progress, o acmeclient.RenewOptions) (*acmeclient.Saved, bool, error) {
	cl, err := c.newClient(f, e, p)
	if err != nil {
		return nil, false, err
	}
	sv, renewed, err := cl.Renew(ctx, o)
	if err != nil {
		return nil, false, err
	}
	if h := f.hookFunc(e); h != nil && renewed {
		if err := cl.RunHook(ctx, h, sv); err != nil {
			return sv, true, fmt.Errorf("the certificate was renewed and stored, but %w", err)
		}
	}
	return sv, renewed, nil
}
