package tsm

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/validate"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
)

// SNPOptions configures an SNPVerifier.
type SNPOptions struct {
	// Roots are the trust anchors. Empty means AMD's production roots
	// (AMDSNPRoots). Test roots (evidence/sim) are trusted only when passed
	// here.
	Roots []SNPRoot
	// Now returns the time at which the certificates must be valid; nil
	// means time.Now.
	Now func() time.Time
}

// SNPVerifier appraises SEV-SNP attestation reports offline: the report's
// signature under the VCEK (or VLEK) from the auxblob's certificate table, that
// certificate's chain to a trusted ARK, the consistency of the report with its
// certificate, and REPORT_DATA. It never fetches anything from AMD's Key
// Distribution Service. It is safe for concurrent use.
type SNPVerifier struct {
	roots map[string][]*trust.AMDRootCerts
	now   func() time.Time
	// chains remembers verified VCEK/VLEK chains (snpcache.go).
	chains snpChainCache
}

// NewSNPVerifier returns a verifier with the trust anchors and clock of o.
func NewSNPVerifier(o SNPOptions) (*SNPVerifier, error) {
	roots := o.Roots
	if len(roots) == 0 {
		var err error
		if roots, err = AMDSNPRoots(); err != nil {
			return nil, fmt.Errorf("sev-snp: %w", err)
		}
	}
	for i, r := range roots {
		if _, err := kds.ParseProductLine(r.ProductLine); err != nil {
			return nil, fmt.Errorf("sev-snp: root %d: %w", i, err)
		}
		if r.ARK == nil || (r.ASK == nil && r.ASVK == nil) {
			return nil, fmt.Errorf("sev-snp: root %d (%s) needs an ARK and an ASK or ASVK", i, r.ProductLine)
		}
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &SNPVerifier{roots: snpTrustedRoots(roots), now: now}, nil
}

// snpAnyGuestPolicy is the most permissive guest policy: the verifier package,
// not this one, decides which policy bits are acceptable.
func snpAnyGuestPolicy() abi.SnpPolicy {
	return abi.SnpPolicy{SMT: true, MigrateMA: true, Debug: true, CXLAllowed: true}
}

// Appraise checks an SEV-SNP report (outblob) against the certificate table
// (auxblob) and the expected REPORT_DATA d, and returns what the report states:
//
//   - the report is an ATTESTATION_REPORT of version 2 or later;
//   - it is signed by the VCEK (or VLEK) whose certificate is in the auxblob,
//     and that certificate chains to a trusted ASK (ASVK) and ARK at Now;
//   - go-sev-guest's consistency checks hold: REPORTED_TCB is the TCB the
//     certificate is issued for, CHIP_ID (unless masked) is its HWID, the
//     committed TCB and firmware version equal the current ones (a provisional
//     firmware update is not accepted);
//   - REPORT_DATA equals d.
func (v *SNPVerifier) Appraise(outblob, auxblob, d []byte) (*SNPClaims, error) {
	if len(d) != abi.ReportDataSize {
		return nil, fmt.Errorf("sev-snp: D is %d bytes, want %d", len(d), abi.ReportDataSize)
	}
	if len(outblob) != abi.ReportSize {
		return nil, fmt.Errorf("sev-snp: outblob is %d bytes, want %d (an ATTESTATION_REPORT)", len(outblob), abi.ReportSize)
	}
	report, err := abi.ReportToProto(outblob)
	if err != nil {
		return nil, fmt.Errorf("sev-snp: malformed report: %w", err)
	}
	if report.GetVersion() < abi.ReportVersion2 {
		return nil, fmt.Errorf("sev-snp: report version %d, want %d or later", report.GetVersion(), abi.ReportVersion2)
	}
	if report.GetVersion() > abi.MaxSupportedReportVersion {
		return nil, fmt.Errorf("sev-snp: report version %d is newer than go-sev-guest supports (%d)", report.GetVersion(), abi.MaxSupportedReportVersion)
	}
	info, err := abi.ParseSignerInfo(report.GetSignerInfo())
	if err != nil {
		return nil, fmt.Errorf("sev-snp: SIGNER_INFO: %w", err)
	}
	chain, err := parseSNPCertTable(auxblob)
	if err != nil {
		return nil, err
	}
	var ekCert []byte
	switch info.SigningKey {
	case abi.VcekReportSigner:
		ekCert = chain.GetVcekCert()
	case abi.VlekReportSigner:
		ekCert = chain.GetVlekCert()
	default:
		return nil, fmt.Errorf("sev-snp: report signing key is %v, want VCEK or VLEK", info.SigningKey)
	}
	if len(ekCert) == 0 {
		return nil, fmt.Errorf("sev-snp: no %v in auxblob (offline appraisal)", info.SigningKey)
	}

	line, err := snpProductLine(report, ekCert, info.SigningKey)
	if err != nil {
		return nil, err
	}
	if len(v.roots[line]) == 0 {
		return nil, fmt.Errorf("sev-snp: no trusted roots for product line %s", line)
	}

	att := &spb.Attestation{Report: report, CertificateChain: chain}
	now := v.now()
	key := snpKey(ekCert, info.SigningKey, line)
	if cert := v.chains.get(key, now); cert != nil {
		// This certificate's chain was verified before and is still in its
		// validity window: only the report's own signature is new.
		if err := verify.SnpReportSignature(outblob, cert); err != nil {
			return nil, fmt.Errorf("sev-snp: signature chain: %w", err)
		}
	} else {
		if err := verify.SnpAttestation(att, &verify.Options{
			DisableCertFetching: true,
			Getter:              snpOffline{},
			Now:                 now,
			TrustedRoots:        v.roots,
		}); err != nil {
			return nil, fmt.Errorf("sev-snp: signature chain: %w", err)
		}
		if cert, err := x509.ParseCertificate(ekCert); err == nil {
			v.chains.put(key, cert, v.roots[line])
		}
	}
	if err := validate.SnpAttestation(att, &validate.Options{
		GuestPolicy: snpAnyGuestPolicy(),
	}); err != nil {
		return nil, fmt.Errorf("sev-snp: report does not agree with its %v certificate or firmware: %w", info.SigningKey, err)
	}
	if !bytes.Equal(report.GetReportData(), d) {
		return nil, fmt.Errorf("sev-snp: REPORT_DATA is %x, want D = %x", report.GetReportData(), d)
	}
	return snpClaims(report, info.SigningKey, line)
}

// productLine is the AMD product line of a verified report: from its CPUID
// fields (version 3 and later) or its endorsement key certificate (version 2).
func snpProductLine(r *spb.Report, ekCert []byte, signer abi.ReportSigner) (string, error) {
	if fms := r.GetCpuid1EaxFms(); fms != 0 {
		return kds.ProductLineFromFms(fms), nil
	}
	cert, err := trust.ParseCert(ekCert)
	if err != nil {
		return "", fmt.Errorf("sev-snp: %v certificate: %w", signer, err)
	}
	exts, err := kds.CertificateExtensions(cert, signer)
	if err != nil {
		return "", fmt.Errorf("sev-snp: %v certificate: %w", signer, err)
	}
	product, err := kds.ParseProductName(exts.ProductName, signer)
	if err != nil {
		return "", fmt.Errorf("sev-snp: %v certificate: %w", signer, err)
	}
	return kds.ProductLine(product), nil
}

// snpOffline is the HTTPS getter handed to go-sev-guest: appraisal is offline,
// so any attempt to fetch fails.
type snpOffline struct{}

// Get refuses every URL.
func (snpOffline) Get(url string) ([]byte, error) {
	return nil, errors.New("sev-snp: offline appraisal does not fetch " + url)
}
