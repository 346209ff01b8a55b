package tsm

import (
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
)

// SNPClaims are the facts an appraised SEV-SNP ATTESTATION_REPORT states
// (AMD SEV-SNP ABI specification 56860, Table 23), after its signature chain and
// REPORT_DATA have been checked. Deciding whether they are acceptable (debug,
// minimum TCB, VMPL, reference measurements) is the verifier's policy.
type SNPClaims struct {
	// Version is the report's VERSION (2 or later).
	Version uint32
	// GuestSVN is GUEST_SVN, the guest's security version number.
	GuestSVN uint32
	// Policy is the guest POLICY the VM was launched with.
	Policy SNPPolicy
	// FamilyID and ImageID are FAMILY_ID and IMAGE_ID (16 bytes each), from the ID block.
	FamilyID, ImageID []byte
	// VMPL is the VMPL the report was requested for.
	VMPL uint32
	// SigningKey names the key that signed the report: "VCEK" or "VLEK".
	SigningKey string
	// ProductLine is the AMD product line whose roots verified the chain ("Milan", "Genoa", "Turin").
	ProductLine string
	// PlatformInfo is PLATFORM_INFO (SMT enabled, TSME enabled, ...), raw.
	PlatformInfo uint64
	// ReportData is REPORT_DATA (64 bytes); appraisal has checked it equals D.
	ReportData []byte
	// Measurement is MEASUREMENT (48 bytes): the launch digest of the guest.
	Measurement []byte
	// HostData is HOST_DATA (32 bytes), set by the host at launch.
	HostData []byte
	// IDKeyDigest and AuthorKeyDigest are ID_KEY_DIGEST and AUTHOR_KEY_DIGEST (48 bytes each).
	IDKeyDigest, AuthorKeyDigest []byte
	// ReportID and ReportIDMA are REPORT_ID and REPORT_ID_MA (32 bytes each).
	ReportID, ReportIDMA []byte
	// ReportedTCB is REPORTED_TCB, the TCB the VCEK is certified for.
	ReportedTCB SNPTCB
	// CurrentTCB, CommittedTCB and LaunchTCB are CURRENT_TCB, COMMITTED_TCB and LAUNCH_TCB.
	CurrentTCB, CommittedTCB, LaunchTCB SNPTCB
	// ChipID is CHIP_ID (64 bytes; all zero when the host masks it).
	ChipID []byte
}

// SNPPolicy is a guest POLICY (56860, Table 9), raw and decoded.
type SNPPolicy struct {
	// Raw is the 64-bit POLICY field.
	Raw uint64
	// ABIMajor and ABIMinor are the lowest SNP firmware ABI the guest allows.
	ABIMajor, ABIMinor uint8
	// SMT: simultaneous multithreading allowed.
	SMT bool
	// MigrateMA: association with a migration agent allowed.
	MigrateMA bool
	// Debug: the host may debug (decrypt) the guest. A debuggable guest
	// protects nothing from the host.
	Debug bool
	// SingleSocket: the guest may run on one socket only.
	SingleSocket bool
	// CXLAllowed: CXL may be populated with devices or memory.
	CXLAllowed bool
	// MemAES256XTS: AES-256-XTS memory encryption required.
	MemAES256XTS bool
	// RAPLDis: Running Average Power Limit must be disabled.
	RAPLDis bool
	// CipherTextHidingDRAM: ciphertext hiding for DRAM must be enabled.
	CipherTextHidingDRAM bool
	// PageSwapDisable: the guest's pages may not be moved or swapped by the host.
	PageSwapDisable bool
}

// SNPTCB is a TCB_VERSION (56860, Table 3), raw and decoded into its security
// patch levels.
type SNPTCB struct {
	// Raw is the 64-bit TCB_VERSION.
	Raw uint64
	// BootLoader, TEE, SNP and Microcode are the security patch levels of the
	// AMD-SP boot loader, the AMD-SP TEE OS, the SNP firmware and the CPU
	// microcode.
	BootLoader, TEE, SNP, Microcode uint8
}

// AtLeast reports whether every security patch level of t is at least that of
// floor: the component-wise order AMD defines for TCB versions.
func (t SNPTCB) AtLeast(floor SNPTCB) bool {
	return kds.TCBPartsLE(kds.DecomposeTCBVersion(kds.TCBVersion(floor.Raw)), kds.DecomposeTCBVersion(kds.TCBVersion(t.Raw)))
}

// NewSNPTCB decodes a raw TCB_VERSION.
func NewSNPTCB(raw uint64) SNPTCB {
	p := kds.DecomposeTCBVersion(kds.TCBVersion(raw))
	return SNPTCB{Raw: raw, BootLoader: p.BlSpl, TEE: p.TeeSpl, SNP: p.SnpSpl, Microcode: p.UcodeSpl}
}

// snpClaims collects the claims of a checked report.
func snpClaims(r *spb.Report, signer abi.ReportSigner, productLine string) (*SNPClaims, error) {
	p, err := abi.ParseSnpPolicy(r.GetPolicy())
	if err != nil {
		return nil, err
	}
	return &SNPClaims{
		Version:  r.GetVersion(),
		GuestSVN: r.GetGuestSvn(),
		Policy: SNPPolicy{
			Raw:      r.GetPolicy(),
			ABIMajor: p.ABIMajor, ABIMinor: p.ABIMinor,
			SMT: p.SMT, MigrateMA: p.MigrateMA, Debug: p.Debug, SingleSocket: p.SingleSocket,
			CXLAllowed: p.CXLAllowed, MemAES256XTS: p.MemAES256XTS, RAPLDis: p.RAPLDis,
			CipherTextHidingDRAM: p.CipherTextHidingDRAM, PageSwapDisable: p.PageSwapDisable,
		},
		FamilyID:        r.GetFamilyId(),
		ImageID:         r.GetImageId(),
		VMPL:            r.GetVmpl(),
		SigningKey:      signer.String(),
		ProductLine:     productLine,
		PlatformInfo:    r.GetPlatformInfo(),
		ReportData:      r.GetReportData(),
		Measurement:     r.GetMeasurement(),
		HostData:        r.GetHostData(),
		IDKeyDigest:     r.GetIdKeyDigest(),
		AuthorKeyDigest: r.GetAuthorKeyDigest(),
		ReportID:        r.GetReportId(),
		ReportIDMA:      r.GetReportIdMa(),
		ReportedTCB:     NewSNPTCB(r.GetReportedTcb()),
		CurrentTCB:      NewSNPTCB(r.GetCurrentTcb()),
		CommittedTCB:    NewSNPTCB(r.GetCommittedTcb()),
		LaunchTCB:       NewSNPTCB(r.GetLaunchTcb()),
		ChipID:          r.GetChipId(),
	}, nil
}
