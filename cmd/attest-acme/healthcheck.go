package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

const healthcheckUsage = `usage:
  attest-acme healthcheck URL [--ca-root FILE | --insecure] [--timeout DURATION]
      GET URL once; exit 0 if the answer is 2xx, 1 otherwise.
      For container health checks in images without a shell or curl.
      https URLs are checked against --ca-root (PEM), else the system's roots;
      --insecure skips certificate verification.
`

// Bounds of one health check.
const (
	defaultHealthTimeout = 5 * time.Second
	maxHealthTimeout     = 5 * time.Minute
	maxHealthBody        = 64 << 10 // read (and discarded) so the connection closes cleanly
	maxHealthRootsFile   = 1 << 20
)

// runHealthcheck is the "healthcheck" subcommand.
func runHealthcheck(ctx context.Context, e env) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, healthcheckUsage) }
	caRoot := fs.String("ca-root", "", "PEM file of the roots to trust for an https URL")
	insecure := fs.Bool("insecure", false, "do not verify the server's certificate")
	timeout := fs.Duration("timeout", defaultHealthTimeout, "bound on the whole request")
	// The URL may come before or after the flags (Docker's HEALTHCHECK is
	// usually written "healthcheck URL --ca-root FILE").
	var pos []string
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
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return usageError{fmt.Sprintf("healthcheck: want exactly one URL, got %d arguments", len(pos))}
	}
	if *insecure && *caRoot != "" {
		return usageError{"healthcheck: --ca-root and --insecure exclude each other"}
	}
	if *timeout <= 0 || *timeout > maxHealthTimeout {
		return usageError{fmt.Sprintf("healthcheck: --timeout %s: want more than 0 and at most %s", *timeout, maxHealthTimeout)}
	}
	u, err := url.Parse(pos[0])
	if err != nil {
		return usageError{fmt.Sprintf("healthcheck: URL: %v", err)}
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return usageError{fmt.Sprintf("healthcheck: URL %q: want http:// or https:// and a host", pos[0])}
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: *insecure} //nolint:gosec // only when asked for
	if *caRoot != "" {
		pool, err := readRoots(*caRoot)
		if err != nil {
			return codedError{exitInternal, fmt.Errorf("healthcheck: --ca-root: %w", err)}
		}
		tlsCfg.RootCAs = pool
	}
	status, err := healthGET(ctx, u.String(), tlsCfg, *timeout)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	fmt.Fprintf(e.stdout, "GET %s: %s\n", u.Redacted(), status)
	return nil
}

// healthGET makes one GET without proxies or redirects and returns the
// status line if the answer is 2xx, else an error naming the status.
func healthGET(ctx context.Context, target string, tlsCfg *tls.Config, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // a health check talks to its own container or network
			TLSClientConfig:     tlsCfg,
			TLSHandshakeTimeout: timeout,
			DisableKeepAlives:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "attest-acme-healthcheck")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHealthBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("GET %s: %s, want 2xx", req.URL.Redacted(), resp.Status)
	}
	return resp.Status, nil
}

// readRoots reads a PEM file of certificates into a pool.
func readRoots(path string) (*x509.CertPool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxHealthRootsFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxHealthRootsFile {
		return nil, fmt.Errorf("%s: over the limit of %d bytes", path, maxHealthRootsFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
