package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/attest-acme/attest-acme/inspect"
	"github.com/attest-acme/attest-acme/verifier"
)

const inspectUsage = `usage:
  attest-acme inspect [--json] [--ear-key FILE] [FILE|-]
      recognise and print what FILE (or standard input) holds: a
      device-attest-01 payload, an attestation object, a bundle, a kc, a TPM
      quote, a configfs-tsm report (SEV-SNP, TDX), an EAR, or an X.509
      certificate with its id-pe-cmw extension; nested objects are shown
      nested. The input may be binary, PEM, hex, base64 or base64url, at
      most 1 MiB.

      Nothing is appraised. An EAR's signature is verified only with
      --ear-key (the verifier's public key: PEM, certificate or JWK); a
      signature that does not verify exits 1.

flags:
  --json          print JSON (complete, full-length values) instead of text
  --ear-key FILE  verify the signature of every EAR found with this key
exit codes: 0 printed; 1 an EAR did not verify (the output says why);
            2 bad flags, input not recognised or over 1 MiB;
            3 FILE or the --ear-key file cannot be read, or is not a key
`

// runInspect is the "inspect" subcommand.
func runInspect(_ context.Context, e env) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, inspectUsage) }
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	earKey := fs.String("ear-key", "", "verify EAR signatures with this public key (PEM, certificate or JWK)")
	// Flags may come before or after the file name.
	var files []string
	args := e.args
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) > 1 {
		fs.Usage()
		return usageError{fmt.Sprintf("one input at a time, got %d", len(files))}
	}

	opts := inspect.Options{Now: time.Now}
	if *earKey != "" {
		k, err := verifier.LoadVerificationKey(*earKey)
		if err != nil {
			return codedError{exitInternal, fmt.Errorf("--ear-key: %w", err)}
		}
		opts.EARKey = k
	}

	name, in := "standard input", e.stdin
	if len(files) == 1 && files[0] != "-" {
		f, err := os.Open(files[0])
		if err != nil {
			return codedError{exitInternal, err}
		}
		defer f.Close()
		name, in = files[0], f
	}
	data, err := io.ReadAll(io.LimitReader(in, inspect.MaxInputSize+1))
	if err != nil {
		return codedError{exitInternal, fmt.Errorf("reading %s: %w", name, err)}
	}

	res, err := inspect.Inspect(data, opts)
	if err != nil {
		var nr *inspect.NotRecognisedError
		if errors.Is(err, inspect.ErrTooLarge) || errors.As(err, &nr) {
			return usageError{fmt.Sprintf("%s: %v", name, err)}
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	if *asJSON {
		err = res.WriteJSON(e.stdout)
	} else {
		err = res.WriteText(e.stdout)
	}
	if err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if len(res.Problems) > 0 {
		return codedError{exitFailure, fmt.Errorf("%s: %s", name, strings.Join(res.Problems, "; "))}
	}
	return nil
}
