package sim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"syscall"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
)

// SNPOptions describes a simulated SEV-SNP guest: what its reports state.
// The zero value is a plausible, non-debug guest at VMPL 0.
type SNPOptions struct {
	// Measurement is MEASUREMENT, 48 bytes; nil means all zero.
	Measurement []byte
	// HostData is HOST_DATA, 32 bytes; nil means all zero.
	HostData []byte
	// Policy is the guest POLICY (Debug, SMT, MigrateMA, ...).
	Policy abi.SnpPolicy
	// GuestSVN is GUEST_SVN.
	GuestSVN uint32
	// ReportedTCB is REPORTED_TCB (and the TCB the VCEK is certified for).
	// CurrentTCB is CURRENT_TCB, COMMITTED_TCB and LAUNCH_TCB; zero means
	// ReportedTCB.
	ReportedTCB, CurrentTCB uint64
	// VMPL is the guest's VMPL (0-3): the configfs-tsm privlevel_floor, and
	// the VMPL of reports for which no higher privlevel is requested.
	VMPL uint
	// ChipID is CHIP_ID and the VCEK's HWID, 64 bytes; nil means a fixed
	// simulated chip.
	ChipID []byte
	// ReportID is REPORT_ID, 32 bytes; nil means all zero.
	ReportID []byte
	// Version is the report VERSION; zero means 3. Version 1 reports are
	// produced (and signed) for tests that show they are rejected.
	Version uint32
	// VLEK signs reports with the VLEK (as cloud hosts do) instead of the VCEK.
	VLEK bool
	// Keys are the chain's keys; nil means TestSNPKeys, whose roots are
	// SNPTestRoots. Fresh keys (NewSNPKeys) make a platform that no trusted
	// root vouches for.
	Keys *SNPKeys
}

// Sizes of the report fields SNPOptions sets.
const (
	snpDefaultVersion = abi.ReportVersion3
	// Firmware version reported as current and committed: SNP firmware 1.55 build 21.
	snpFirmwareMajor, snpFirmwareMinor, snpFirmwareBuild = 1, 55, 21
)

// SNP is a simulated SEV-SNP guest: a fake configfs-tsm whose sev_guest
// provider returns reports over the inblob, signed by a test AMD chain, with
// the certificate table (VCEK or VLEK, ASK or ASVK, ARK) in auxblob. It
// implements evidence.Attester through tsm.Attester and is safe for concurrent
// use.
type SNP struct {
	client   configfsi.Client
	attester *tsm.Attester
	root     tsm.SNPRoot
}

// NewSNP returns a simulated SEV-SNP guest described by o.
func NewSNP(o SNPOptions) (*SNP, error) {
	for _, f := range []struct {
		name string
		v    []byte
		size int
	}{{"measurement", o.Measurement, abi.MeasurementSize}, {"host data", o.HostData, abi.HostDataSize}, {"chip ID", o.ChipID, abi.ChipIDSize}, {"report ID", o.ReportID, abi.ReportIDSize}} {
		if f.v != nil && len(f.v) != f.size {
			return nil, fmt.Errorf("sim: %s is %d bytes, want %d", f.name, len(f.v), f.size)
		}
	}
	if o.VMPL > maxPrivlevel {
		return nil, fmt.Errorf("sim: VMPL %d, want 0 to %d", o.VMPL, maxPrivlevel)
	}
	keys := o.Keys
	if keys == nil {
		keys = TestSNPKeys()
	}
	root, err := snpRoot(keys)
	if err != nil {
		return nil, err
	}
	g := &snpGuest{
		opts:   o,
		signer: abi.VcekReportSigner,
		key:    keys.VCEK,
		chipID: orDefault(o.ChipID, snpDefaultChipID()),
	}
	if o.VLEK {
		g.signer, g.key = abi.VlekReportSigner, keys.VLEK
	}
	if g.opts.CurrentTCB == 0 {
		g.opts.CurrentTCB = o.ReportedTCB
	}
	if g.opts.Version == 0 {
		g.opts.Version = snpDefaultVersion
	}
	ek, err := snpEndorsementCert(root, keys, g.signer, o.ReportedTCB, g.chipID)
	if err != nil {
		return nil, err
	}
	chain := &spb.CertificateChain{ArkCert: root.ARK.Raw, AskCert: root.ASK.Raw, VcekCert: ek.Raw}
	if o.VLEK {
		chain = &spb.CertificateChain{ArkCert: root.ARK.Raw, VlekCert: ek.Raw, Extras: map[string][]byte{abi.AsvkGUID: root.ASVK.Raw}}
	}
	g.certTable = abi.CertsFromProto(chain).Marshal()

	client := newTSMClient(provider{
		name:           tsm.ProviderSNP,
		privlevels:     true,
		privlevelFloor: o.VMPL,
		outblob:        g.report,
		auxblob:        func() ([]byte, error) { return bytes.Clone(g.certTable), nil },
	})
	return &SNP{client: client, attester: tsm.NewAttester(client), root: root}, nil
}

// BindingHash is SHA-512, as for every configfs-tsm attester.
func (s *SNP) BindingHash() crypto.Hash { return s.attester.BindingHash() }

// Attest returns a report map over d (64 bytes), through tsm.Attester.
func (s *SNP) Attest(ctx context.Context, d []byte) (evidence.Evidence, error) {
	return s.attester.Attest(ctx, d)
}

// Client is the fake configfs-tsm, for driving a tsm.Attester with options of
// its own (such as a privilege level).
func (s *SNP) Client() configfsi.Client { return s.client }

// Roots are the trust anchors the guest's reports chain to: SNPTestRoots
// unless SNPOptions.Keys was set.
func (s *SNP) Roots() []tsm.SNPRoot { return []tsm.SNPRoot{s.root} }

// The SNP is an evidence.Attester.
var _ evidence.Attester = (*SNP)(nil)

// snpGuest is the sev_guest provider's state: what every report states, and
// the key that signs it. It is read-only after NewSNP.
type snpGuest struct {
	opts      SNPOptions
	signer    abi.ReportSigner
	key       *ecdsa.PrivateKey
	chipID    []byte
	certTable []byte
}

// report returns a signed ATTESTATION_REPORT with REPORT_DATA inblob, at VMPL
// privlevel.
func (g *snpGuest) report(inblob []byte, privlevel uint) ([]byte, error) {
	if len(inblob) != abi.ReportDataSize {
		return nil, fmt.Errorf("sev_guest needs an inblob of %d bytes, got %d: %w", abi.ReportDataSize, len(inblob), syscall.EINVAL)
	}
	o := g.opts
	r := &spb.Report{
		Version:         o.Version,
		GuestSvn:        o.GuestSVN,
		Policy:          abi.SnpPolicyToBytes(o.Policy),
		FamilyId:        make([]byte, abi.FamilyIDSize),
		ImageId:         make([]byte, abi.ImageIDSize),
		Vmpl:            uint32(privlevel),
		SignatureAlgo:   abi.SignEcdsaP384Sha384,
		CurrentTcb:      o.CurrentTCB,
		SignerInfo:      abi.ComposeSignerInfo(abi.SignerInfo{SigningKey: g.signer}),
		ReportData:      bytes.Clone(inblob),
		Measurement:     orDefault(o.Measurement, make([]byte, abi.MeasurementSize)),
		HostData:        orDefault(o.HostData, make([]byte, abi.HostDataSize)),
		IdKeyDigest:     make([]byte, abi.IDKeyDigestSize),
		AuthorKeyDigest: make([]byte, abi.AuthorKeyDigestSize),
		ReportId:        orDefault(o.ReportID, make([]byte, abi.ReportIDSize)),
		ReportIdMa:      bytes.Repeat([]byte{0xff}, abi.ReportIDMASize), // no migration agent
		ReportedTcb:     o.ReportedTCB,
		ChipId:          g.chipID,
		CommittedTcb:    o.CurrentTCB,
		CurrentBuild:    snpFirmwareBuild,
		CurrentMinor:    snpFirmwareMinor,
		CurrentMajor:    snpFirmwareMajor,
		CommittedBuild:  snpFirmwareBuild,
		CommittedMinor:  snpFirmwareMinor,
		CommittedMajor:  snpFirmwareMajor,
		LaunchTcb:       o.CurrentTCB,
		Signature:       make([]byte, abi.SignatureSize),
	}
	if o.Version >= abi.ReportVersion3 {
		r.Cpuid1EaxFms = abi.MaskedCpuid1EaxFromSevProduct(abi.DefaultSevProduct())
	}
	raw, err := abi.ReportToAbiBytes(r)
	if err != nil {
		return nil, fmt.Errorf("sev_guest: encoding the report: %w", err)
	}
	digest := sha512.Sum384(abi.SignedComponent(raw))
	sr, ss, err := ecdsa.Sign(rand.Reader, g.key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("sev_guest: signing the report: %w", err)
	}
	if err := abi.SetSignature(sr, ss, raw); err != nil {
		return nil, fmt.Errorf("sev_guest: %w", err)
	}
	return raw, nil
}

// snpDefaultChipID is the CHIP_ID of the simulated chip when none is given.
func snpDefaultChipID() []byte {
	id := sha512.Sum512([]byte("attest-acme simulated SEV-SNP chip"))
	return id[:]
}

// orDefault returns a copy of v, or def when v is nil.
func orDefault(v, def []byte) []byte {
	if v == nil {
		return def
	}
	return bytes.Clone(v)
}
