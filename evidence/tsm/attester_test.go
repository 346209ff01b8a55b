package tsm_test

import (
	"context"
	"crypto"
	"strings"
	"testing"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
)

func TestAttesterProducesAReportMap(t *testing.T) {
	s := newSNP(t, sim.SNPOptions{})
	a := tsm.NewAttester(s.Client())
	if a.BindingHash() != crypto.SHA512 {
		t.Fatalf("BindingHash() = %v, want SHA-512", a.BindingHash())
	}
	d := testD(0x61)
	r := parseReport(t, attest(t, a, d))
	// The kernel's provider attribute ends with a newline; the map does not.
	if r.Provider != tsm.ProviderSNP {
		t.Fatalf("provider = %q, want %q", r.Provider, tsm.ProviderSNP)
	}
	if len(r.OutBlob) != 1184 || len(r.AuxBlob) == 0 {
		t.Fatalf("outblob of %d bytes and auxblob of %d bytes, want a report and a certificate table", len(r.OutBlob), len(r.AuxBlob))
	}
}

func TestAttesterRejects(t *testing.T) {
	s := newSNP(t, sim.SNPOptions{})
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		client  configfsi.Client
		ctx     context.Context
		d       []byte
		wantErr string
	}{
		{"inblob shorter than 64 bytes", s.Client(), context.Background(), testD(1)[:32], "tsm: inblob is 32 bytes, want 64"},
		{"inblob longer than 64 bytes", s.Client(), context.Background(), append(testD(1), 0), "tsm: inblob is 65 bytes, want 64"},
		{"empty inblob", s.Client(), context.Background(), nil, "tsm: inblob is 0 bytes, want 64"},
		{"canceled context", s.Client(), canceled, testD(1), "context canceled"},
		{"provider that is not a TEE", &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": faketsm.Report611(0)}},
			context.Background(), testD(1), `tsm report: provider "fake" is not one of`},
		{"no configfs-tsm report subsystem", &faketsm.Client{}, context.Background(), testD(1), "tsm: getting a report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := tsm.NewAttester(tc.client).Attest(tc.ctx, tc.d)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Attest() = %+v, %v; want an error containing %q", ev, err, tc.wantErr)
			}
		})
	}
}

// TestAttesterPrivilegeLevel shows the privlevel option reaching the report:
// an SEV-SNP guest at VMPL 1 gets VMPL 1 reports by default, VMPL 3 reports
// when it asks, and none below its own VMPL.
func TestAttesterPrivilegeLevel(t *testing.T) {
	s := newSNP(t, sim.SNPOptions{VMPL: 1})
	v := snpVerifier(t, testRoots(t))
	d := testD(0x62)
	for _, tc := range []struct {
		name     string
		opts     []tsm.AttesterOption
		wantVMPL uint32
		wantErr  string
	}{
		{"default", nil, 1, ""},
		{"level 3", []tsm.AttesterOption{tsm.WithPrivilegeLevel(3)}, 3, ""},
		{"level 1", []tsm.AttesterOption{tsm.WithPrivilegeLevel(1)}, 1, ""},
		{"below the floor", []tsm.AttesterOption{tsm.WithPrivilegeLevel(0)}, 0, "could not write report privlevel"},
		{"above 3", []tsm.AttesterOption{tsm.WithPrivilegeLevel(4)}, 0, "could not write report privlevel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := tsm.NewAttester(s.Client(), tc.opts...).Attest(context.Background(), d)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Attest() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := parseReport(t, ev.Data)
			c, err := v.Appraise(r.OutBlob, r.AuxBlob, d)
			if err != nil {
				t.Fatal(err)
			}
			if c.VMPL != tc.wantVMPL {
				t.Fatalf("VMPL = %d, want %d", c.VMPL, tc.wantVMPL)
			}
		})
	}
}

// Both the backend and the simulator are evidence.Attesters.
var (
	_ evidence.Attester = (*tsm.Attester)(nil)
	_ evidence.Attester = (*sim.SNP)(nil)
)
