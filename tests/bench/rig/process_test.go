package rig

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestProcReadersReadThisProcess(t *testing.T) {
	// Burn a little CPU so that the counters are not zero.
	deadline := time.Now().Add(30 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	cpu, err := ProcCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cpu <= 0 {
		t.Errorf("CPU time %v, want > 0", cpu)
	}
	hwm, err := statusKB(os.Getpid(), "VmHWM:")
	if err != nil {
		t.Fatal(err)
	}
	if hwm < 1<<20 {
		t.Errorf("VmHWM %d bytes, want at least 1 MiB for a Go test binary", hwm)
	}
	if _, err := statusKB(os.Getpid(), "NoSuchField:"); err == nil || !strings.Contains(err.Error(), "has no NoSuchField:") {
		t.Errorf("missing field: error %v, want one naming the field", err)
	}
}

func TestStartStopAndExitStatus(t *testing.T) {
	log := t.TempDir() + "/sleep.log"
	p, err := Start("sleep", log, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(10 * time.Second); err == nil {
		t.Error("sleep stopped by SIGTERM reported a clean exit")
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	p, err = Start("true", log, "true")
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if err := p.ExitErr(); err != nil {
		t.Errorf("true exited with %v, want a clean exit", err)
	}
}
