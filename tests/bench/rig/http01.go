package rig

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// http01Prefix is where http-01 answers live (RFC 8555 §8.3).
const http01Prefix = "/.well-known/acme-challenge/"

// Responder answers step-ca's http-01 requests: GET
// http://IDENTIFIER/.well-known/acme-challenge/TOKEN on port 80 (step-ca
// always uses port 80), with the key authorization of TOKEN.
type Responder struct {
	srv     *http.Server
	ln      net.Listener
	answers sync.Map // token -> key authorization
	// Fetches counts the requests answered with a key authorization.
	Fetches atomic.Int64
	done    chan error
}

// ListenHTTP01 serves http-01 answers on addr ("127.0.0.1:80" for step-ca;
// port 80 needs root or CAP_NET_BIND_SERVICE).
func ListenHTTP01(addr string) (*Responder, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &Responder{ln: ln, done: make(chan error, 1)}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { r.done <- r.srv.Serve(ln) }()
	return r, nil
}

// ServeHTTP answers GET /.well-known/acme-challenge/TOKEN.
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	token, ok := strings.CutPrefix(req.URL.Path, http01Prefix)
	if !ok || req.Method != http.MethodGet {
		http.NotFound(w, req)
		return
	}
	v, ok := r.answers.Load(token)
	if !ok {
		http.NotFound(w, req)
		return
	}
	r.Fetches.Add(1)
	w.Header().Set("Content-Type", "application/octet-stream")
	io.WriteString(w, v.(string))
}

// Set publishes the key authorization of token.
func (r *Responder) Set(token, keyAuth string) { r.answers.Store(token, keyAuth) }

// Delete withdraws token's answer.
func (r *Responder) Delete(token string) { r.answers.Delete(token) }

// Close stops the server.
func (r *Responder) Close() error {
	err := r.srv.Close()
	if serr := <-r.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
