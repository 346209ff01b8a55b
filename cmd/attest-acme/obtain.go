package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/attest-acme/attest-acme/acmeclient"
)

const obtainUsage = `usage: attest-acme obtain --server URL --identifier ID --attester tpm|tsm|sim-snp|sim-tdx --dir DIR [flags]

Gets a certificate for the permanent identifier ID: makes a new certificate
key, registers (or reuses) the ACME account in DIR, orders, answers the
CA's device-attest-01 challenge with fresh platform evidence over that key
(and http-01 for each --dns name), finalizes, and writes into DIR:

  certificates/ID.crt         certificate, then intermediates
  certificates/ID.issuer.crt  intermediates
  certificates/ID.key         private key (0600)
  certificates/ID.ear         the attestation result (EAR) the certificate carries
  certificates/ID.json        resource file

all replaced together (a versioned directory, then an atomic symlink swap).

exit codes: 0 done; 1 failed (the CA refused, could not be reached or is not
trusted, bad evidence, hook failed); 2 bad command line; 3 local
precondition missing (no TPM, no configfs-tsm, DIR not writable)
`

// runObtain is the "obtain" subcommand.
func runObtain(ctx context.Context, e env) error { return newClientCmd().obtain(ctx, e) }

func (c *clientCmd) obtain(ctx context.Context, e env) error {
	var f clientFlags
	fs := newClientFlagSet("obtain", &f)
	if err := parseFlags(fs, e.args); err == errHelp {
		writeUsage(e.stderr, fs, obtainUsage)
		return nil
	} else if err != nil {
		return err
	}
	if err := f.check(fs); err != nil {
		return err
	}
	p := &progress{e: e, f: &f}
	sv, err := c.doObtain(ctx, &f, e, p)
	err = f.clientError(ctx, err)
	p.result(sv, true, err)
	return err
}

func (c *clientCmd) doObtain(ctx context.Context, f *clientFlags, e env, p *progress) (*acmeclient.Saved, error) {
	cl, err := c.newClient(f, e, p)
	if err != nil {
		return nil, err
	}
	kt, _ := acmeclient.ParseKeyType(f.keyType)
	sv, err := cl.Obtain(ctx, acmeclient.Request{Identifier: f.identifier, DNSNames: f.dns, KeyType: kt})
	if err != nil {
		return nil, err
	}
	if h := f.hookFunc(e); h != nil {
		if err := cl.RunHook(ctx, h, sv); err != nil {
			return sv, fmt.Errorf("the certificate was stored, but %w", err)
		}
	}
	return sv, nil
}

// newClientFlagSet makes a flag set with the shared client flags that
// prints nothing itself: main prints the one error message.
func newClientFlagSet(name string, f *clientFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	f.register(fs)
	return fs
}
