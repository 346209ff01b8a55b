package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/attest-acme/attest-acme/verifier"
)

const verifierUsage = `usage:
  attest-acme verifier --config POLICY.yaml [--log-format text|json]
      serve the verifier (Veraison challenge-response API, EARs signed ES256)
      as the policy's server section says, until SIGINT or SIGTERM
  attest-acme verifier check --config POLICY.yaml
      load and check a policy file, print what it trusts, and exit
`

// runVerifier is the "verifier" subcommand.
func runVerifier(ctx context.Context, e env) error {
	check := len(e.args) > 0 && e.args[0] == "check"
	args := e.args
	if check {
		args = args[1:]
	}
	fs := flag.NewFlagSet("verifier", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, verifierUsage) }
	config := fs.String("config", "", "the verifier's policy file (YAML)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if *config == "" || fs.NArg() > 0 {
		fs.Usage()
		return usageError{"verifier: --config is required, and nothing else"}
	}
	log, err := newLogger(e, *logFormat)
	if err != nil {
		return err
	}
	p, err := verifier.LoadPolicy(*config)
	if err != nil {
		return err
	}
	if check {
		fmt.Fprintf(e.stdout, "%s: policy %q is valid: %d workloads\n", *config, p.ID, len(p.Workloads))
		for _, w := range p.Workloads {
			fmt.Fprintf(e.stdout, "  workload %s\n", w.Name)
		}
		return nil
	}
	srv, err := verifier.NewServer(p, log)
	if err != nil {
		return err
	}
	return srv.Serve(ctx, nil)
}

// newLogger makes the structured logger of a server subcommand.
func newLogger(e env, format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, nil)), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format %q: want text or json", format)}
}
