package tsm

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/validate"
	"github.com/google/go-tdx-guest/verify"
)

// TDX quote layout facts this file checks before go-tdx-guest parses a quote
// (Intel TDX DCAP Quoting Library API, "Quote Format", version 4).
const (
	// TDXReportDataSize is the size of REPORTDATA, which must equal D.
	TDXReportDataSize = abi.ReportDataSize
	// MaxTDXQuoteSize bounds the quote bytes Appraise reads: a quote travels
	// as a bundle record, so it cannot be larger than one.
	MaxTDXQuoteSize = evidence.MaxItemSize

	tdxQuoteVersion     = abi.QuoteVersion // 4; go-tdx-guest parses no other version
	tdxKeyTypeECDSA     = abi.AttestationKeyType
	tdxTEEType          = abi.TeeTDX
	tdxSignedSizeOffset = 0x278 // offset of the signed-data size field: header + TD quote body
	tdxAttrDebug        = 1 << 0
)

// intelSGXRootCAPEM is Intel's SGX Root CA, the root of every PCK certificate
// chain (https://certificates.trustedservices.intel.com/Intel_SGX_Provisioning_Certification_RootCA.pem).
// It is the certificate go-tdx-guest embeds as verify/trusted_root.pem; the
// tests check that it is the root of the Intel-signed sample quote that
// go-tdx-guest ships. It is passed to go-tdx-guest explicitly because with no
// TrustedRoots go-tdx-guest logs a warning to standard output on every call.
const intelSGXRootCAPEM = `-----BEGIN CERTIFICATE-----
MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw
aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv
cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ
BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG
A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0
aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT
AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7
1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB
uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ
MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50
ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV
Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI
KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg
AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=
-----END CERTIFICATE-----
`

// IntelSGXRootCA returns Intel's SGX Root CA certificate, the trust anchor a
// TDXVerifier uses when its options name no other.
func IntelSGXRootCA() (*x509.Certificate, error) {
	roots, err := ParseTDXRoots([]byte(intelSGXRootCAPEM))
	if err != nil {
		return nil, fmt.Errorf("tdx: embedded Intel SGX Root CA: %w", err)
	}
	return roots[0], nil
}

// ParseTDXRoots reads trust anchors for TDXOptions.Roots from PEM (a policy
// file's): one or more CERTIFICATE blocks, each a CA certificate, and nothing
// else but white space.
func ParseTDXRoots(pemData []byte) ([]*x509.Certificate, error) {
	var roots []*x509.Certificate
	rest := pemData
	for len(bytes.TrimSpace(rest)) > 0 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("tdx: root %d: not PEM", len(roots))
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("tdx: root %d: PEM block %q, want CERTIFICATE", len(roots), b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tdx: root %d: %w", len(roots), err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("tdx: root %d (%s) is not a CA certificate", len(roots), c.Subject)
		}
		roots = append(roots, c)
	}
	if len(roots) == 0 {
		return nil, errors.New("tdx: no root certificate in PEM")
	}
	return roots, nil
}

// TDXOptions configures a TDXVerifier.
type TDXOptions struct {
	// Roots are the certificates a quote's PCK chain must end in. Empty
	// means Intel's SGX Root CA alone (IntelSGXRootCA). A test root (such as
	// the simulated platform's) is trusted only when it is named here.
	Roots []*x509.Certificate
	// Now is the clock at which every certificate of the PCK chain must be
	// valid. Nil means time.Now.
	Now func() time.Time
}

// TDXVerifier appraises TDX quotes (configfs-tsm provider tdx_guest) offline.
//
// What Appraise checks, for a quote of version 4 (the only version
// go-tdx-guest parses; any other is rejected):
//   - the quote is at most MaxTDXQuoteSize bytes, is well formed (header,
//     TD quote body, signed data, certification data of type 6 holding a QE
//     report and a PCK chain of type 5), and has nothing after its signed
//     data;
//   - the header names the ECDSA-256 attestation key type and the TDX TEE type;
//   - the PCK chain in the quote (PCK leaf, intermediate, root, as PEM) has
//     the shape Intel's has (P-256 keys, ECDSA-SHA256, Intel's common names;
//     go-tdx-guest accepts only "Intel SGX PCK Platform CA" as the
//     intermediate, so a PCK leaf of Intel's Processor CA is rejected) and
//     chains from the PCK leaf through the quote's intermediate to one of
//     the trusted roots, each certificate valid at Now;
//   - the PCK leaf's SGX extensions parse (they give FMSPC);
//   - the QE report is signed by the PCK leaf's key, and its REPORTDATA is
//     SHA-256(attestation key || QE authentication data) followed by zeros;
//   - the header and TD quote body are signed by that attestation key;
//   - XFAM and TD_ATTRIBUTES have no bit set that the TDX module fixes to
//     zero (go-tdx-guest validate): a TD with attributes unknown to
//     go-tdx-guest is rejected;
//   - REPORTDATA equals D.
//
// What it does NOT check, because that needs Intel's collateral service
// (PCS), which a TDXVerifier never contacts: the TCB status of the platform
// (TEE_TCB_SVN and the PCK certificate's SGX TCB against Intel's TCB info),
// the QE identity (the QE report's MRSIGNER, ISVPRODID, attributes and
// ISVSVN against Intel's QE identity; they are returned as facts), and
// revocation of the PCK leaf or intermediate (Intel's CRLs). A platform with
// an out-of-date or revoked TCB passes. The measurements it returns (MRTD, RTMRs, ...) are
// facts; which values are acceptable, and whether a debug TD is, is the
// verifier package's policy.
type TDXVerifier struct {
	roots *x509.CertPool
	now   func() time.Time
}

// NewTDXVerifier returns a verifier that trusts opts.Roots (Intel's SGX Root
// CA when empty) and reads time from opts.Now.
func NewTDXVerifier(opts TDXOptions) (*TDXVerifier, error) {
	roots := opts.Roots
	if len(roots) == 0 {
		intel, err := IntelSGXRootCA()
		if err != nil {
			return nil, err
		}
		roots = []*x509.Certificate{intel}
	}
	pool := x509.NewCertPool()
	for i, c := range roots {
		if c == nil {
			return nil, fmt.Errorf("tdx: trusted root %d is nil", i)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("tdx: trusted root %d (%s) is not a CA certificate", i, c.Subject)
		}
		pool.AddCert(c)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &TDXVerifier{roots: pool, now: now}, nil
}

// TDXClaims are the facts of an appraised TDX quote. Every byte slice has
// the size the TDX quote format gives it.
type TDXClaims struct {
	// Version is the quote version (4).
	Version uint16
	// QEVendorID is QE_VENDOR_ID of the quote header (16 bytes; Intel's QE
	// is 939a7233f79c4ca9940a0db3957f0607).
	QEVendorID []byte
	// TEETCBSVN is TEE_TCB_SVN, the TDX module's TCB SVNs (16 bytes).
	TEETCBSVN []byte
	// MRSEAM is the measurement of the TDX module (48 bytes).
	MRSEAM []byte
	// MRTD is the measurement of the TD's initial contents (48 bytes).
	MRTD []byte
	// RTMR are the run-time measurement registers RTMR0..3 (48 bytes each).
	RTMR [4][]byte
	// MRConfigID, MROwner and MROwnerConfig are the host-provided TD
	// identities (48 bytes each).
	MRConfigID, MROwner, MROwnerConfig []byte
	// TDAttributes is TD_ATTRIBUTES as in the quote (8 bytes, little endian).
	TDAttributes []byte
	// Debug is TD_ATTRIBUTES bit 0 (TUD.DEBUG): the host can read and
	// change the TD's state. A verifier rejects it unless a policy allows it.
	Debug bool
	// XFAM is the TD's extended features mask (8 bytes, little endian).
	XFAM []byte
	// ReportData is REPORTDATA (64 bytes), equal to D.
	ReportData []byte
	// FMSPC is the platform's FMSPC from the PCK certificate (6 bytes).
	FMSPC []byte
	// QEMRSigner, QEISVProdID and QEISVSVN identify the Quoting Enclave
	// that signed the quote (its report's MRSIGNER, 32 bytes, ISVPRODID
	// and ISVSVN). Intel's TD QE has ISVPRODID 2; no expected value is
	// checked here.
	QEMRSigner  []byte
	QEISVProdID uint16
	QEISVSVN    uint16
}

// Appraise checks a raw TDX quote (the tdx_guest outblob) as TDXVerifier
// describes, and that its REPORTDATA equals d, and returns its facts.
func (v *TDXVerifier) Appraise(quote, d []byte) (*TDXClaims, error) {
	if v == nil || v.roots == nil {
		return nil, errors.New("tdx: verifier is not set up (use NewTDXVerifier)")
	}
	if len(d) != TDXReportDataSize {
		return nil, fmt.Errorf("tdx: D is %d bytes, want %d", len(d), TDXReportDataSize)
	}
	q, err := parseTDXQuote(quote)
	if err != nil {
		return nil, err
	}
	now := v.now()
	opts := &verify.Options{
		TrustedRoots: v.roots,
		Now:          &verify.TimeSet{PckCertChain: now, TcbInfo: now, QeIdentity: now, PckCrl: now, RootCaCrl: now},
		// Offline: no collateral, so no CRL, TCB info or QE identity.
		GetCollateral:    false,
		CheckRevocations: false,
	}
	if err := verify.TdxQuote(q, opts); err != nil {
		return nil, fmt.Errorf("tdx: quote signature, QE report or PCK chain: %w", err)
	}
	body := q.GetTdQuoteBody()
	if rd := body.GetReportData(); !bytes.Equal(rd, d) {
		return nil, fmt.Errorf("tdx: REPORTDATA is %s, want D = %s", hex.EncodeToString(rd), hex.EncodeToString(d))
	}
	if err := validate.TdxQuote(q, &validate.Options{}); err != nil {
		return nil, fmt.Errorf("tdx: TD attributes or XFAM: %w", err)
	}
	fmspc, err := tdxFMSPC(q)
	if err != nil {
		return nil, err
	}
	rtmrs := body.GetRtmrs()
	attrs := body.GetTdAttributes()
	qe := q.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetQeReport()
	return &TDXClaims{
		Version:       uint16(q.GetHeader().GetVersion()),
		QEVendorID:    q.GetHeader().GetQeVendorId(),
		TEETCBSVN:     body.GetTeeTcbSvn(),
		MRSEAM:        body.GetMrSeam(),
		MRTD:          body.GetMrTd(),
		RTMR:          [4][]byte{rtmrs[0], rtmrs[1], rtmrs[2], rtmrs[3]},
		MRConfigID:    body.GetMrConfigId(),
		MROwner:       body.GetMrOwner(),
		MROwnerConfig: body.GetMrOwnerConfig(),
		TDAttributes:  attrs,
		Debug:         binary.LittleEndian.Uint64(attrs)&tdxAttrDebug != 0,
		XFAM:          body.GetXfam(),
		ReportData:    body.GetReportData(),
		FMSPC:         fmspc,
		QEMRSigner:    qe.GetMrSigner(),
		QEISVProdID:   uint16(qe.GetIsvProdId()), // abi checked it fits in 16 bits
		QEISVSVN:      uint16(qe.GetIsvSvn()),
	}, nil
}

// parseTDXQuote checks the header fields this package depends on, so that
// the errors name them, then parses with go-tdx-guest's abi.
func parseTDXQuote(quote []byte) (q *pb.QuoteV4, err error) {
	if len(quote) > MaxTDXQuoteSize {
		return nil, fmt.Errorf("tdx: quote is %d bytes, over the limit of %d", len(quote), MaxTDXQuoteSize)
	}
	if len(quote) < abi.QuoteMinSize {
		return nil, fmt.Errorf("tdx: quote is %d bytes, shorter than the smallest TDX quote (%d)", len(quote), abi.QuoteMinSize)
	}
	if ver := binary.LittleEndian.Uint16(quote[0:2]); ver != tdxQuoteVersion {
		return nil, fmt.Errorf("tdx: quote version %d is not supported (want %d)", ver, tdxQuoteVersion)
	}
	if kt := binary.LittleEndian.Uint16(quote[2:4]); kt != tdxKeyTypeECDSA {
		return nil, fmt.Errorf("tdx: attestation key type %d is not supported (want %d, ECDSA-256 with P-256)", kt, tdxKeyTypeECDSA)
	}
	if tee := binary.LittleEndian.Uint32(quote[4:8]); tee != tdxTEEType {
		return nil, fmt.Errorf("tdx: quote TEE type 0x%x is not TDX (0x%x)", tee, tdxTEEType)
	}

	// go-tdx-guest's abi (this version) slices the signed data by the
	// lengths the quote declares without checking them first, and panics on
	// some malformed quotes (FuzzTDXAppraise found it; the inputs are seeds
	// under testdata/fuzz). A panic there is a malformed quote.
	defer func() {
		if r := recover(); r != nil {
			q, err = nil, fmt.Errorf("tdx: malformed quote (go-tdx-guest abi: %v)", r)
		}
	}()
	parsed, err := abi.QuoteToProto(quote)
	if err != nil {
		return nil, fmt.Errorf("tdx: malformed quote: %w", err)
	}
	q, ok := parsed.(*pb.QuoteV4)
	if !ok {
		return nil, fmt.Errorf("tdx: go-tdx-guest returned a %T, want a version 4 quote", parsed)
	}
	if n := len(q.GetExtraBytes()); n != 0 {
		signed := tdxSignedSizeOffset + 4 + int(q.GetSignedDataSize())
		return nil, fmt.Errorf("tdx: quote has %d bytes after its signed data (quote is %d bytes, signed data ends at %d)", n, len(quote), signed)
	}
	return q, nil
}

// tdxFMSPC reads FMSPC from the SGX extensions of the quote's PCK leaf,
// which verify.TdxQuote has already checked.
func tdxFMSPC(q *pb.QuoteV4) ([]byte, error) {
	chain, err := verify.ExtractChainFromQuote(q)
	if err != nil {
		return nil, fmt.Errorf("tdx: PCK chain: %w", err)
	}
	ext, err := pcs.PckCertificateExtensions(chain.PCKCertificate)
	if err != nil {
		return nil, fmt.Errorf("tdx: PCK certificate SGX extensions: %w", err)
	}
	fmspc, err := hex.DecodeString(ext.FMSPC)
	if err != nil || len(fmspc) != 6 {
		return nil, fmt.Errorf("tdx: PCK certificate FMSPC %q is not 6 bytes of hex", ext.FMSPC)
	}
	return fmspc, nil
}
