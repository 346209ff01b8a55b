package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// syncCounter counts a process's fsync and fdatasync calls with perf's
// syscall tracepoints (counted in the kernel: no tracing overhead in the
// process). It needs perf and tracefs; without them it counts nothing.
type syncCounter struct {
	pid  int
	dir  string
	cmd  *exec.Cmd
	file string
}

// perfAvailable reports whether perf can count the tracepoints here.
func perfAvailable() bool {
	if _, err := exec.LookPath("perf"); err != nil {
		return false
	}
	cmd := exec.Command("perf", "stat", "-x,", "-e", "syscalls:sys_enter_fdatasync", "true")
	return cmd.Run() == nil
}

// start attaches perf to the process (its threads, and those they create).
func (s *syncCounter) start(label string) error {
	s.file = filepath.Join(s.dir, label+".perf")
	s.cmd = exec.Command("perf", "stat", "-x,", "-o", s.file,
		"-e", "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync", "-p", strconv.Itoa(s.pid))
	if err := s.cmd.Start(); err != nil {
		return err
	}
	// perf says nothing when it has attached; give it the time it takes
	// here (tens of milliseconds), so that a short measurement is counted
	// whole.
	time.Sleep(300 * time.Millisecond)
	return nil
}

// stop detaches perf and returns the number of calls counted.
func (s *syncCounter) stop() (int64, error) {
	if s.cmd == nil {
		return 0, nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	_ = s.cmd.Wait()
	s.cmd = nil
	b, err := os.ReadFile(s.file)
	if err != nil {
		return 0, err
	}
	var n int64
	found := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 || !strings.HasPrefix(f[2], "syscalls:sys_enter_") {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("perf output %q: %w", line, err)
		}
		n += v
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("perf output has %d of the 2 counters:\n%s", found, b)
	}
	return n, nil
}
