package acmeclient

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Hook runs after each issuance, with the certificate as stored.
type Hook func(ctx context.Context, sv *Saved) error

// DefaultHookTimeout bounds a hook command.
const DefaultHookTimeout = 2 * time.Minute

// HookEnv is the environment a hook command gets on top of the client's
// own: the stored paths under attest-acme's names, and lego's names for the
// ones lego's --run-hook sets.
//
//	ATTEST_ACME_IDENTIFIER     the permanent identifier
//	ATTEST_ACME_CERT_PATH      leaf and intermediates (PEM)
//	ATTEST_ACME_ISSUER_PATH    intermediates (PEM)
//	ATTEST_ACME_KEY_PATH       private key (PEM)
//	ATTEST_ACME_EAR_PATH       the EAR from the certificate
//	ATTEST_ACME_RESOURCE_PATH  the resource file (JSON)
//	ATTEST_ACME_CERT_DIR       the directory (symlink) holding all of them
//	ATTEST_ACME_SERIAL         the serial number (hex)
//	ATTEST_ACME_NOT_AFTER      the end of validity (RFC 3339)
//	LEGO_CERT_DOMAIN, LEGO_CERT_PATH, LEGO_CERT_KEY_PATH  as lego sets them
func HookEnv(sv *Saved) []string {
	p := sv.Paths
	return []string{
		"ATTEST_ACME_IDENTIFIER=" + sv.Identifier,
		"ATTEST_ACME_CERT_PATH=" + p.Cert,
		"ATTEST_ACME_ISSUER_PATH=" + p.Issuer,
		"ATTEST_ACME_KEY_PATH=" + p.Key,
		"ATTEST_ACME_EAR_PATH=" + p.EAR,
		"ATTEST_ACME_RESOURCE_PATH=" + p.Resource,
		"ATTEST_ACME_CERT_DIR=" + p.Dir,
		"ATTEST_ACME_SERIAL=" + sv.Serial,
		"ATTEST_ACME_NOT_AFTER=" + sv.NotAfter.Format(time.RFC3339),
		"LEGO_CERT_DOMAIN=" + sv.Identifier,
		"LEGO_CERT_PATH=" + p.Cert,
		"LEGO_CERT_KEY_PATH=" + p.Key,
	}
}

// CommandHook returns a Hook that runs command with /bin/sh -c, with
// HookEnv added to the environment and its output sent to stdout and
// stderr. It is killed (its whole process group) after timeout (zero:
// DefaultHookTimeout) or when ctx is done; a non-zero exit is an error.
func CommandHook(command string, timeout time.Duration, stdout, stderr io.Writer) Hook {
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	return func(ctx context.Context, sv *Saved) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.Env = append(os.Environ(), HookEnv(sv)...)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		if err := cmd.Run(); err != nil {
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("hook %q: killed after %s", command, timeout)
			}
			return fmt.Errorf("hook %q: %w", command, err)
		}
		return nil
	}
}

// RunHook runs h for sv and reports it as a StageHook event.
func (c *Client) RunHook(ctx context.Context, h Hook, sv *Saved) error {
	start := time.Now()
	err := h(ctx, sv)
	e := Event{Stage: StageHook, Duration: time.Since(start), Err: err, Message: "hook ran"}
	if err != nil {
		e.Message = "hook failed"
	}
	c.emit(e)
	return err
}
