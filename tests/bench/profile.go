package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	rpprof "runtime/pprof"
	"sync"
	"syscall"

	"github.com/attest-acme/attest-acme/caplugin"
)

// profiler drives the profiles of one -pprof run: the CA's, through the
// control endpoint of `bench serve-ca`, and this driver's own.
type profiler struct {
	control string
	dir     string
	self    *os.File
}

// start begins CPU profiles of the CA and of the driver, named after label.
func (p *profiler) start(label string) error {
	if err := p.call("start", label); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(p.dir, label+".driver.cpu.pprof"))
	if err != nil {
		return err
	}
	if err := rpprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	p.self = f
	return nil
}

// stop ends them and writes the CA's block and mutex profiles.
func (p *profiler) stop() error {
	rpprof.StopCPUProfile()
	err := p.self.Close()
	return errors.Join(err, p.call("stop", ""))
}

func (p *profiler) call(what, label string) error {
	res, err := http.Post(p.control+"/"+what+"?name="+url.QueryEscape(label), "", nil)
	if err != nil {
		return fmt.Errorf("profile %s: %w", what, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", what, res.Status)
	}
	return nil
}

// serveCA is `bench serve-ca --config ca.json --control ADDR --dir DIR`:
// the CA exactly as `attest-acme ca --config` serves it (caplugin.LoadConfig,
// caplugin.New, Run), plus a loopback control endpoint that starts and stops
// CPU profiles (POST /start?name=N, POST /stop; files DIR/N.ca.*.pprof) and
// net/http/pprof. Block and mutex profiling are on for the whole run, and
// written cumulatively at each stop (compare two with pprof -base).
func serveCA(args []string) int {
	fs := flag.NewFlagSet("serve-ca", flag.ContinueOnError)
	config := fs.String("config", "", "ca.json")
	control := fs.String("control", "127.0.0.1:0", "control and pprof address")
	dir := fs.String("dir", ".", "directory for the profiles")
	if err := fs.Parse(args); err != nil || *config == "" {
		fmt.Fprintln(os.Stderr, "usage: bench serve-ca --config ca.json --control ADDR --dir DIR")
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	caCfg, pc, err := caplugin.LoadConfig(*config)
	if err != nil {
		log.Error("loading the configuration", "error", err)
		return 1
	}
	srv, err := caplugin.New(caplugin.Options{CA: caCfg, Plugin: pc, Logger: log})
	if err != nil {
		log.Error("building the CA", "error", err)
		return 1
	}
	runtime.SetBlockProfileRate(100_000) // one sample per 100µs blocked
	runtime.SetMutexProfileFraction(10)

	var mu sync.Mutex
	var cur *os.File
	var name string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if cur != nil {
			http.Error(w, "a profile is running", http.StatusConflict)
			return
		}
		name = filepath.Base(r.URL.Query().Get("name"))
		f, err := os.Create(filepath.Join(*dir, name+".ca.cpu.pprof"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			f.Close()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cur = f
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if cur == nil {
			http.Error(w, "no profile is running", http.StatusConflict)
			return
		}
		rpprof.StopCPUProfile()
		err := cur.Close()
		cur = nil
		for _, p := range []string{"block", "mutex", "heap"} {
			f, ferr := os.Create(filepath.Join(*dir, name+".ca."+p+".pprof"))
			if ferr != nil {
				err = errors.Join(err, ferr)
				continue
			}
			err = errors.Join(err, rpprof.Lookup(p).WriteTo(f, 0), f.Close())
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		log.Error("control listener", "error", err)
		return 1
	}
	go http.Serve(ln, mux)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		log.Error("serving", "error", err)
		return 1
	}
	return 0
}
