package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence/sim"
)

const caUsage = `usage:
  attest-acme ca --config DIR/ca.json [--password-file FILE]
      serve the CA (step-ca with the device-attest-01 "cmw" format) until
      SIGINT or SIGTERM, then shut down gracefully
  attest-acme ca init --dir DIR [--address HOST:PORT] [--dns NAMES] [--metrics-address HOST:PORT]
      write a development CA that trusts the simulated platforms' test anchors
`

// runCA is the "ca" subcommand: serve a CA, or "init" one.
func runCA(ctx context.Context, e env) error {
	if len(e.args) > 0 && e.args[0] == "init" {
		return runCAInit(e, e.args[1:])
	}
	fs := flag.NewFlagSet("ca", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, caUsage) }
	configPath := fs.String("config", "", "ca.json of the CA to serve")
	passwordFile := fs.String("password-file", "", "file holding the password of the intermediate key, if encrypted")
	if err := fs.Parse(e.args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if *configPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return usageError{"ca: --config is required, and nothing else"}
	}
	caCfg, pc, err := caplugin.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	var password []byte
	if *passwordFile != "" {
		b, err := os.ReadFile(*passwordFile)
		if err != nil {
			return codedError{exitInternal, fmt.Errorf("password file: %w", err)}
		}
		password = bytes.TrimRight(b, "\r\n")
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	srv, err := caplugin.New(caplugin.Options{CA: caCfg, Plugin: pc, Password: password, Logger: log})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// runCAInit is "ca init": a development CA in one directory.
func runCAInit(e env, args []string) error {
	fs := flag.NewFlagSet("ca init", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, caUsage) }
	dir := fs.String("dir", "", "directory to write the CA into")
	address := fs.String("address", "127.0.0.1:8443", "address the CA listens on")
	dns := fs.String("dns", "localhost,127.0.0.1", "comma-separated names of the CA")
	metrics := fs.String("metrics-address", "", "address to serve Prometheus metrics on (empty: none)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err.Error()}
	}
	if *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return usageError{"ca init: --dir is required, and nothing else"}
	}
	snpRoots, err := sim.SNPTestRootsPEM()
	if err != nil {
		return err
	}
	tdxRoot, err := sim.TDXTestRootPEM()
	if err != nil {
		return err
	}
	files, err := caplugin.InitDev(caplugin.DevSetup{
		Dir:            *dir,
		Address:        *address,
		DNSNames:       strings.Split(*dns, ","),
		MetricsAddress: *metrics,
		SNPRootsPEM:    snpRoots,
		TDXRootsPEM:    tdxRoot,
		TDXMRTD:        sim.DefaultTDXMRTD(),
	})
	if err != nil {
		return codedError{exitInternal, err}
	}
	fmt.Fprintf(e.stdout, `Development CA written to %s.
It trusts the SIMULATED SEV-SNP and TDX platforms' test anchors: not for production.
  root certificate:  %s
  verifier policy:   %s
  ACME directory:    %s

Next, serve it:
  attest-acme ca --config %s
`, *dir, files.Root, files.VerifierPolicy, files.DirectoryURL, files.CAConfig)
	return nil
}
