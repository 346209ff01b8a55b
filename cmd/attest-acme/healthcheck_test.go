package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// healthServers are the servers a health check is pointed at.
type healthServers struct {
	plain, tls *httptest.Server
	rootsFile  string // PEM of the TLS server's certificate
}

func newHealthServers(t *testing.T) *healthServers {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc("/created", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) { w.Write(bytes.Repeat([]byte("x"), 4*maxHealthBody)) })
	mux.HandleFunc("/hang", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	s := &healthServers{plain: httptest.NewServer(mux), tls: httptest.NewTLSServer(mux)}
	t.Cleanup(s.plain.Close)
	t.Cleanup(s.tls.Close)
	s.rootsFile = filepath.Join(t.TempDir(), "root.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.tls.Certificate().Raw})
	if err := os.WriteFile(s.rootsFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// closedURL returns a URL on which nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/health"
}

func TestHealthcheck(t *testing.T) {
	s := newHealthServers(t)
	notPEM := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(notPEM, []byte("no certificates here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int    // exit code realMain returns
		stdout string // substring of stdout, when code is 0
		stderr string // substring of stderr, when code is not 0
	}{
		{"2xx over http is healthy", []string{s.plain.URL + "/ok"}, exitOK, "200 OK", ""},
		{"204 is healthy", []string{s.plain.URL + "/created"}, exitOK, "204 No Content", ""},
		{"a large body is read up to the limit and still healthy", []string{s.plain.URL + "/big"}, exitOK, "200 OK", ""},
		{"https under the given root is healthy, URL first", []string{s.tls.URL + "/ok", "--ca-root", s.rootsFile}, exitOK, "200 OK", ""},
		{"https under the given root is healthy, flags first", []string{"--ca-root", s.rootsFile, s.tls.URL + "/ok"}, exitOK, "200 OK", ""},
		{"https with --insecure is healthy", []string{s.tls.URL + "/ok", "--insecure"}, exitOK, "200 OK", ""},
		{"503 is unhealthy", []string{s.plain.URL + "/down"}, exitFailure, "", "503 Service Unavailable, want 2xx"},
		{"a redirect is not followed and is unhealthy", []string{s.plain.URL + "/moved"}, exitFailure, "", "302 Found, want 2xx"},
		{"a 404 is unhealthy", []string{s.plain.URL + "/nothing"}, exitFailure, "", "404 Not Found, want 2xx"},
		{"https under no trusted root is unhealthy", []string{s.tls.URL + "/ok"}, exitFailure, "", "certificate"},
		{"nothing listening is unhealthy", []string{closedURL(t)}, exitFailure, "", "connection refused"},
		{"a server that does not answer in time is unhealthy", []string{s.plain.URL + "/hang", "--timeout", "200ms"}, exitFailure, "", "deadline exceeded"},
		{"no URL is a usage error", nil, exitUsage, "", "want exactly one URL, got 0"},
		{"two URLs are a usage error", []string{s.plain.URL + "/ok", s.plain.URL + "/ok"}, exitUsage, "", "want exactly one URL, got 2"},
		{"--ca-root with --insecure is a usage error", []string{s.tls.URL + "/ok", "--insecure", "--ca-root", s.rootsFile}, exitUsage, "", "exclude each other"},
		{"a scheme other than http(s) is a usage error", []string{"ftp://127.0.0.1/health"}, exitUsage, "", "want http:// or https://"},
		{"a URL without a host is a usage error", []string{"http:///health"}, exitUsage, "", "want http:// or https://"},
		{"a zero timeout is a usage error", []string{s.plain.URL + "/ok", "--timeout", "0s"}, exitUsage, "", "--timeout 0s"},
		{"an unknown flag is a usage error", []string{s.plain.URL + "/ok", "--follow"}, exitUsage, "", "flag provided but not defined"},
		{"a roots file without PEM is a local failure", []string{s.tls.URL + "/ok", "--ca-root", notPEM}, exitInternal, "", "holds no PEM certificate"},
		{"a missing roots file is a local failure", []string{s.tls.URL + "/ok", "--ca-root", notPEM + ".missing"}, exitInternal, "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := realMain(append([]string{"healthcheck"}, tt.args...), strings.NewReader(""), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d; stdout %q, stderr %q", code, tt.code, stdout.String(), stderr.String())
			}
			if tt.code == exitOK && !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.stdout)
			}
			if tt.code != exitOK && !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.stderr)
			}
		})
	}
}

// TestHealthcheckStopsWhenCancelled shows that the check gives up when its
// context ends (SIGTERM from the container runtime), whatever the timeout.
func TestHealthcheckStopsWhenCancelled(t *testing.T) {
	s := newHealthServers(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	err := runHealthcheck(ctx, env{args: []string{s.plain.URL + "/ok"}, stdout: &stdout, stderr: &stderr})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v, want context canceled", err)
	}
}
