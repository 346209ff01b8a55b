// Command veraison-testenv prepares and checks a loopback Veraison deployment
// for testenv/veraison/run.sh. It only parses flags and calls
// internal/testenv.
//
//	veraison-testenv init-stores -dir DIR
//	veraison-testenv ear-key -dir DIR
//	veraison-testenv corim -corim CORIM.json -comid COMID.json [-comid ...] -out OUT.cbor
//	veraison-testenv free-ports -n N
//	veraison-testenv wait [-timeout 60s] URL...
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/attest-acme/attest-acme/tools/veraison/internal/testenv"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(os.Args[1:], os.Stdout); err != nil {
		logger.Error("veraison-testenv failed", "err", err)
		os.Exit(1)
	}
}

const usage = `usage: veraison-testenv COMMAND [flags]
commands: init-stores, ear-key, corim, free-ports, wait`

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	switch cmd {
	case "init-stores":
		dir := fs.String("dir", "", "directory for the sqlite stores")
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		if *dir == "" {
			return errors.New("init-stores: -dir is required")
		}
		return testenv.InitStores(*dir)

	case "ear-key":
		dir := fs.String("dir", "", "directory for the EAR key files")
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		if *dir == "" {
			return errors.New("ear-key: -dir is required")
		}
		files, err := testenv.WriteEARKey(*dir, rand.Reader)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n%s\n%s\n", files.PrivateJWK, files.PublicJWK, files.PublicPEM)
		return err

	case "corim":
		corimPath := fs.String("corim", "", "CoRIM JSON template (id, profile)")
		out := fs.String("out", "", "output file for the unsigned CoRIM (CBOR)")
		var comids multiFlag
		fs.Var(&comids, "comid", "CoMID JSON (repeatable)")
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		if *corimPath == "" || *out == "" || len(comids) == 0 {
			return errors.New("corim: -corim, -comid and -out are required")
		}
		cj, err := os.ReadFile(*corimPath)
		if err != nil {
			return fmt.Errorf("corim: %w", err)
		}
		var docs [][]byte
		for _, p := range comids {
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("corim: %w", err)
			}
			docs = append(docs, b)
		}
		b, err := testenv.CompileCoRIM(cj, docs...)
		if err != nil {
			return err
		}
		return os.WriteFile(*out, b, 0o644)

	case "free-ports":
		n := fs.Int("n", 1, "number of ports")
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		ports, err := testenv.FreePorts(*n)
		if err != nil {
			return err
		}
		s := make([]string, len(ports))
		for i, p := range ports {
			s[i] = fmt.Sprint(p)
		}
		_, err = fmt.Fprintln(stdout, strings.Join(s, " "))
		return err

	case "wait":
		timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for every URL")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return errors.New("wait: give the discovery URLs to wait for")
		}
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		client := &http.Client{Timeout: 5 * time.Second}
		return testenv.WaitReady(ctx, client, 200*time.Millisecond, fs.Args()...)

	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

// parse parses flags and rejects positional arguments beyond max.
func parse(fs *flag.FlagSet, args []string, max int) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > max {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(v string) error {
	*m = append(*m, v)
	return nil
}
