package tsm

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"strings"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"
)

// Attester obtains configfs-tsm reports (docs/protocol.md §3): it writes
// D = SHA-512(KC) to a fresh report entry's inblob and returns the provider,
// outblob and auxblob as a report map. It implements evidence.Attester.
//
// The client is the kernel's configfs (linuxtsm.MakeClient) inside a
// confidential VM, or a fake of it (faketsm, evidence/sim) anywhere else.
type Attester struct {
	client    configfsi.Client
	privilege *report.Privilege
}

// AttesterOption configures an Attester.
type AttesterOption func(*Attester)

// WithPrivilegeLevel requests reports at privilege level n (the configfs-tsm
// privlevel attribute; for SEV-SNP, the VMPL the report is generated for).
// The kernel rejects a level below its privlevel_floor. Without this option the
// kernel's default is used.
func WithPrivilegeLevel(n uint) AttesterOption {
	return func(a *Attester) { a.privilege = &report.Privilege{Level: n} }
}

// NewAttester returns an Attester that talks to configfs-tsm through client.
func NewAttester(client configfsi.Client, opts ...AttesterOption) *Attester {
	a := &Attester{client: client}
	for _, o := range opts {
		o(a)
	}
	return a
}

// BindingHash is SHA-512: the inblob holds 64 bytes (docs/protocol.md §3).
func (a *Attester) BindingHash() crypto.Hash { return crypto.SHA512 }

// Attest generates a report with inblob d, which must be exactly InBlobSize
// bytes (tdx_guest and sev_guest take exactly 64; D is always a SHA-512
// digest, so nothing is padded), and returns it as evidence of media type
// evidence.MediaTypeTSMReport. configfs-tsm calls cannot be interrupted; ctx is
// checked before the request starts.
func (a *Attester) Attest(ctx context.Context, d []byte) (evidence.Evidence, error) {
	if len(d) != InBlobSize {
		return evidence.Evidence{}, fmt.Errorf("tsm: inblob is %d bytes, want %d (D = SHA-512 of the kc)", len(d), InBlobSize)
	}
	if err := ctx.Err(); err != nil {
		return evidence.Evidence{}, fmt.Errorf("tsm: %w", err)
	}
	resp, err := report.Get(a.client, &report.Request{
		InBlob:     bytes.Clone(d), // faketsm keeps the slice it is given
		Privilege:  a.privilege,
		GetAuxBlob: true,
	})
	if err != nil {
		return evidence.Evidence{}, fmt.Errorf("tsm: getting a report: %w", err)
	}
	r := &Report{
		// The provider attribute ends with a newline, as sysfs attributes do.
		Provider: strings.TrimSuffix(resp.Provider, "\n"),
		OutBlob:  resp.OutBlob,
		AuxBlob:  resp.AuxBlob,
	}
	data, err := r.Marshal()
	if err != nil {
		return evidence.Evidence{}, err
	}
	return evidence.Evidence{MediaType: evidence.MediaTypeTSMReport, Data: data}, nil
}

// The Attester is an evidence.Attester.
var _ evidence.Attester = (*Attester)(nil)
