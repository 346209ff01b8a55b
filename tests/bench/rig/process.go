package rig

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// Process is a child process of the rig (the CA or the verifier service),
// with its standard output and error appended to a log file.
type Process struct {
	// Name says what it is, for errors.
	Name string
	// Log is the file its output goes to.
	Log string

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	err  error // Wait's result, once done is closed
}

// Start runs bin with args, its output appended to logPath. The child is
// killed if the rig's process dies first.
func Start(name, logPath, bin string, args ...string) (*Process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("rig: starting %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// PID is the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr is how the process exited (nil for status 0); valid after Done.
func (p *Process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stop sends SIGTERM (graceful shutdown) and waits up to timeout, then
// kills. It returns the exit error, nil for a clean exit.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.ExitErr()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.ExitErr()
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("rig: %s did not stop within %s after SIGTERM; killed", p.Name, timeout)
	}
}

// Kill sends SIGKILL (a crash) and waits for the process to go.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// PeakRSS is the process's peak resident set size (VmHWM) in bytes, since
// it started or since the last ResetPeakRSS.
func (p *Process) PeakRSS() (int64, error) { return statusKB(p.PID(), "VmHWM:") }

// RSS is the process's resident set size now (VmRSS) in bytes.
func (p *Process) RSS() (int64, error) { return statusKB(p.PID(), "VmRSS:") }

// RSSParts is the process's resident memory now by kind, in bytes:
// anonymous (heap, stacks) and file-backed (the binary, and mmapped files
// such as a bbolt database).
func (p *Process) RSSParts() (anon, file int64, err error) {
	if anon, err = statusKB(p.PID(), "RssAnon:"); err != nil {
		return 0, 0, err
	}
	file, err = statusKB(p.PID(), "RssFile:")
	return anon, file, err
}

// ResetPeakRSS resets VmHWM to the current RSS (proc(5), clear_refs "5").
func (p *Process) ResetPeakRSS() error {
	return os.WriteFile("/proc/"+strconv.Itoa(p.PID())+"/clear_refs", []byte("5"), 0)
}

// CPUTime is the CPU time the process has used (user + system).
func (p *Process) CPUTime() (time.Duration, error) { return ProcCPUTime(p.PID()) }

// ProcCPUTime is the CPU time (user + system) process pid has used.
func ProcCPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: count fields
	// after the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("rig: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("rig: /proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("rig: /proc/%d/stat: %w", pid, err)
	}
	return time.Duration(u+s) * time.Second / clockTicks, nil
}

func statusKB(pid int, field string) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, field) {
			continue
		}
		v := strings.Fields(strings.TrimPrefix(line, field))
		if len(v) != 2 || v[1] != "kB" {
			return 0, fmt.Errorf("rig: /proc/%d/status: %q", pid, line)
		}
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("rig: /proc/%d/status: %q: %w", pid, line, err)
		}
		return n << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("rig: /proc/%d/status has no %s", pid, field)
}

// WriteBytes is what the process has caused to be written to storage
// (write_bytes in /proc/PID/io), in bytes.
func (p *Process) WriteBytes() (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID()) + "/io")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("rig: /proc/%d/io has no write_bytes", p.PID())
}

// Tail returns the last n bytes of the process's log, for error messages.
func (p *Process) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// waitHTTP polls url until it answers 200, the process exits, or ctx ends.
func (p *Process) waitHTTP(ctx context.Context, url string, cl *http.Client) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		res, err := cl.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("rig: %s exited before it was ready (%v):\n%s", p.Name, p.ExitErr(), p.Tail(4096))
		case <-ctx.Done():
			return fmt.Errorf("rig: %s not ready at %s: %w (last error %v):\n%s", p.Name, url, ctx.Err(), err, p.Tail(4096))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartCA serves ca with `BIN ca --config ca.json`, its output appended to
// logPath, and waits until /health answers.
func StartCA(ctx context.Context, bin string, ca *CA, logPath string) (*Process, error) {
	return startCA(ctx, ca, logPath, bin, "ca", "--config", ca.Config)
}

// StartCACommand is StartCA with a command of the caller's (a binary that
// serves ca.json as `attest-acme ca --config` does, with extra
// instrumentation).
func StartCACommand(ctx context.Context, ca *CA, logPath, bin string, args ...string) (*Process, error) {
	return startCA(ctx, ca, logPath, bin, args...)
}

func startCA(ctx context.Context, ca *CA, logPath, bin string, args ...string) (*Process, error) {
	p, err := Start("CA", logPath, bin, args...)
	if err != nil {
		return nil, err
	}
	cl := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Roots, MinVersion: tls.VersionTLS12},
	}}
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.waitHTTP(ctx, "https://"+ca.Address+"/health", cl); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// StartVerifier serves ca's verifier service policy with `BIN verifier
// --config POLICY`, its output appended to logPath, and waits until it
// publishes its EAR key.
func StartVerifier(ctx context.Context, bin string, ca *CA, logPath string) (*Process, error) {
	if ca.VerifierPolicy == "" {
		return nil, errors.New("rig: the CA was not set up with a verifier service (CAOptions.VerifierPort)")
	}
	p, err := Start("verifier", logPath, bin, "verifier", "--config", ca.VerifierPolicy)
	if err != nil {
		return nil, err
	}
	cl := &http.Client{Timeout: 2 * time.Second}
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.waitHTTP(ctx, ca.VerifierURL+"/.well-known/veraison/verification", cl); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}
