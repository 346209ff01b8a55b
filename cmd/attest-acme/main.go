// Command attest-acme is the one binary of attest-acme: the CA, the verifier,
// the client and the tools, as subcommands. It only parses flags and config
// files and calls the packages; every decision lives in a package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes shared by every subcommand (documented in the README).
const (
	exitOK       = 0
	exitFailure  = 1 // the operation failed (a problem from the CA, a bad input file, ...)
	exitUsage    = 2 // bad command line, or input that was not recognised
	exitInternal = 3 // a local precondition is missing (no TPM, no configfs-tsm, unwritable directory)
)

// usageError marks an error caused by the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// env is what a subcommand gets from main: arguments, streams and a context
// cancelled on SIGINT or SIGTERM.
type env struct {
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// subcommand runs one subcommand.
type subcommand struct {
	summary string
	run     func(ctx context.Context, e env) error
}

func subcommands() map[string]subcommand {
	return map[string]subcommand{
		"demo":     {"run the whole flow on a simulated platform, in one process", runDemo},
		"version":  {"print the version", runVersion},
		"verifier": {"serve the verifier, or check a policy file", runVerifier},
		"ca":       {"serve the CA (step-ca with the cmw format), or init a development one", runCA},
		"inspect":  {"show what a payload, bundle, evidence, EAR or certificate holds", runInspect},
		"obtain":   {"get an attested certificate (ACME device-attest-01 with fresh evidence)", runObtain},
		"renew":    {"renew a stored certificate when due, with fresh evidence", runRenew},
		"run":      {"keep a certificate renewed (daemon), with a hook after each renewal", runRun},

		// For images without a shell: HEALTHCHECK ["attest-acme", "healthcheck", URL].
		"healthcheck": {"GET a URL; exit 0 iff it answers 2xx (container health checks)", runHealthcheck},
	}
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmds := subcommands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "attest-acme: unknown subcommand %q\n", args[0])
		printUsage(stderr, cmds)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, env{args: args[1:], stdin: stdin, stdout: stdout, stderr: stderr})
	return exitCode(stderr, args[0], err)
}

// exitCode prints err once and maps it to an exit code.
func exitCode(stderr io.Writer, name string, err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	var ce codedError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "attest-acme %s: %v\n", name, err)
		return exitUsage
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "attest-acme %s: %v\n", name, err)
		return ce.code
	default:
		fmt.Fprintf(stderr, "attest-acme %s: %v\n", name, err)
		return exitFailure
	}
}

// codedError carries a specific exit code.
type codedError struct {
	code int
	err  error
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }

func printUsage(w io.Writer, cmds map[string]subcommand) {
	fmt.Fprintln(w, "usage: attest-acme <subcommand> [flags]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sortStrings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'attest-acme <subcommand> -h' for its flags.")
}
