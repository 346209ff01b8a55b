package acmeclient_test

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"

	"github.com/attest-acme/attest-acme/acmeclient"
	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
)

// bigAttester returns configfs-tsm evidence larger than a bundle record may be.
type bigAttester struct{}

func (bigAttester) BindingHash() crypto.Hash { return crypto.SHA512 }

func (bigAttester) Attest(context.Context, []byte) (evidence.Evidence, error) {
	return evidence.Evidence{MediaType: evidence.MediaTypeTSMReport, Data: make([]byte, 40<<10)}, nil
}

// TestObtainFailuresLeaveDirAlone checks each bad situation ends in one
// error of the right kind that says what happened, and that the directory
// is byte for byte what it was (a certificate and an account were already
// there, from a first issuance).
func TestObtainFailuresLeaveDirAlone(t *testing.T) {
	ca := startCA(t, caOptions{dev: func(ds *caplugin.DevSetup) { ds.PermanentIdentifiers = []string{"vm-*"} }})
	good, err := sim.NewSNP(sim.SNPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	debug, err := sim.NewSNP(sim.SNPOptions{Policy: abi.SnpPolicy{Debug: true, SMT: true}})
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "https://" + freePort(t) + "/acme/attest/directory"

	for _, tc := range []struct {
		name     string
		attester evidence.Attester
		id       string
		edit     func(*acmeclient.Config)
		check    func(t *testing.T, err error)
	}{
		{"CA unreachable", good, "vm-a", func(c *acmeclient.Config) { c.DirectoryURL = unreachable }, func(t *testing.T, err error) {
			var ce *acmeclient.ConnError
			if !errors.As(err, &ce) || ce.Untrusted {
				t.Fatalf("%v: want a ConnError, not about trust", err)
			}
			if !containsAll(err.Error(), "cannot reach the CA at "+unreachable, "connection refused") {
				t.Errorf("message %q", err)
			}
		}},
		{"CA not trusted", good, "vm-a", func(c *acmeclient.Config) { c.HTTPClient = acmeclient.NewHTTPClient(nil, 5*time.Second) }, func(t *testing.T, err error) {
			var ce *acmeclient.ConnError
			if !errors.As(err, &ce) || !ce.Untrusted {
				t.Fatalf("%v: want an untrusted ConnError", err)
			}
			if !containsAll(err.Error(), "presented a TLS certificate that is not trusted", "unknown authority") {
				t.Errorf("message %q", err)
			}
		}},
		{"evidence of a debug guest", debug, "vm-a", nil, func(t *testing.T, err error) {
			var pe *acmeclient.ProblemError
			if !errors.As(err, &pe) {
				t.Fatalf("%v: want a ProblemError", err)
			}
			if pe.Type != "urn:ietf:params:acme:error:badAttestationStatement" || !strings.Contains(strings.ToLower(pe.Detail), "debug") {
				t.Errorf("problem %s %q, want badAttestationStatement about debug", pe.Type, pe.Detail)
			}
			if !containsAll(err.Error(), `device-attest-01 challenge for permanent-identifier "vm-a"`, pe.Type, pe.Detail) {
				t.Errorf("message %q does not name the step, type and detail", err)
			}
		}},
		{"identifier no workload may have", good, "db-1", nil, func(t *testing.T, err error) {
			var pe *acmeclient.ProblemError
			if !errors.As(err, &pe) {
				t.Fatalf("%v: want a ProblemError", err)
			}
			if pe.Type != "urn:ietf:params:acme:error:rejectedIdentifier" || !strings.Contains(pe.Detail+err.Error(), "db-1") {
				t.Errorf("problem %s %q, want rejectedIdentifier naming db-1", pe.Type, pe.Detail)
			}
		}},
		{"evidence too large", bigAttester{}, "vm-a", nil, func(t *testing.T, err error) {
			var ee *acmeclient.EvidenceError
			if !errors.As(err, &ee) {
				t.Fatalf("%v: want an EvidenceError", err)
			}
			if !containsAll(err.Error(), "platform evidence", "40960 bytes, over the limit of 32768") {
				t.Errorf("message %q", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			first, _ := ca.client(t, dir, good)
			if _, err := first.Obtain(ctx, acmeclient.Request{Identifier: "vm-a"}); err != nil {
				t.Fatalf("first Obtain: %v", err)
			}
			before := snapshot(t, dir)
			edit := []func(*acmeclient.Config){}
			if tc.edit != nil {
				edit = append(edit, tc.edit)
			}
			cl, _ := ca.client(t, dir, tc.attester, edit...)
			_, err := cl.Obtain(ctx, acmeclient.Request{Identifier: tc.id})
			if err == nil {
				t.Fatal("Obtain succeeded")
			}
			t.Logf("error: %v", err)
			tc.check(t, err)
			if d := diffSnapshots(before, snapshot(t, dir)); len(d) > 0 {
				t.Errorf("the directory changed: %v", d)
			}
		})
	}
}

// TestObtainFailureOnEmptyDir checks that a failure before the CA was
// reached writes nothing at all.
func TestObtainFailureOnEmptyDir(t *testing.T) {
	g, err := sim.NewSNP(sim.SNPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() + "/client"
	cl, err := acmeclient.New(acmeclient.Config{
		DirectoryURL: "https://" + freePort(t) + "/acme/attest/directory",
		Storage:      acmeclient.NewStorage(dir),
		Attester:     g,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Obtain(context.Background(), acmeclient.Request{Identifier: "vm-a"}); err == nil {
		t.Fatal("Obtain succeeded")
	}
	if len(snapshot(t, dir)) != 0 {
		t.Errorf("Obtain wrote %v", snapshot(t, dir))
	}
}
