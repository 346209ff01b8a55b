package sim

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	_ "embed" // the committed test PCK chain
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim/internal/tdxpki"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
)

// The test PCK chain, generated once and committed (a policy written in one
// process must trust the root that quotes made in another chain to). To
// replace it, and with it the test root every development policy names:
//
//go:generate go run ./internal/tdxpki/gen -out testdata
var (
	//go:embed testdata/tdx_test_pck_chain.pem
	tdxTestChainPEM string
	//go:embed testdata/tdx_test_pck_key.pem
	tdxTestPCKKeyPEM string
)

// Sizes and values of the simulated quote (Intel TDX DCAP quote format v4).
const (
	tdxMeasurementSize = abi.MrTdSize // MRTD, RTMRs, MRSEAM, ...: SHA-384
	// TDXAttrDebug is TD_ATTRIBUTES bit 0 (TUD.DEBUG).
	TDXAttrDebug uint64 = 1 << 0
	// TDXAttrSEPTVEDisable is TD_ATTRIBUTES bit 28 (SEPT_VE_DISABLE), set
	// by every Linux TD that does not handle EPT-violation #VEs.
	TDXAttrSEPTVEDisable uint64 = 1 << 28

	tdxQEVendorIntel = "\x93\x9a\x72\x33\xf7\x9c\x4c\xa9\x94\x0a\x0d\xb3\x95\x7f\x06\x07"
	// tdxXFAM enables x87, SSE, AVX, AVX-512, PK and AMX state, as a
	// Sapphire Rapids TD does.
	tdxXFAM          uint64 = 0x61ae7
	tdxQESVN                = 4
	tdxQEProdID             = 2 // the TD Quoting Enclave
	tdxQEAuthDataLen        = 32
	tdxQEAttributes         = "\x15\x00\x00\x00\x00\x00\x00\x00\xe7\x00\x00\x00\x00\x00\x00\x00"
	// certification data types (quote format v4): a QE report with its
	// signature, authentication data and PCK chain; the PCK chain as PEM.
	tdxCertDataQEReport = 6
	tdxCertDataPCKChain = 5
	// sizes of the signed data's fixed parts, to fill in the size fields
	// that abi.QuoteToAbiBytes writes as given.
	tdxSigAndKeySize  = 0x80  // quote signature and attestation key
	tdxCertHeaderSize = 6     // certification data type and size
	tdxQEReportSize   = 0x180 // enclave report
	tdxSignatureSize  = 0x40  // ECDSA P-256 r || s
	tdxAuthSizeField  = 2
)

// tdxTEETCBSVN is the TEE_TCB_SVN of the simulated TDX module (module 1.5,
// as in go-tdx-guest's sample quote).
const tdxTEETCBSVN = "\x03\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// TDXPKI is a PCK signing chain for simulated TDX quotes: a root CA, an
// intermediate CA and a PCK certificate whose key signs the Quoting Enclave
// report. The chain has the shape of Intel's (which go-tdx-guest checks,
// common names included) and every subject says "attest-acme test PKI (NOT
// Intel)".
type TDXPKI struct {
	pki *tdxpki.PKI
}

// TDXTestPKI returns the committed test chain (evidence/sim/testdata), the
// same in every process, valid from 2025 to 2075. Nothing trusts its root
// unless a caller passes it in (tsm.TDXOptions.Roots).
func TDXTestPKI() (*TDXPKI, error) {
	p, err := tdxpki.Parse([]byte(tdxTestChainPEM), []byte(tdxTestPCKKeyPEM))
	if err != nil {
		return nil, fmt.Errorf("sim: committed TDX test PKI: %w", err)
	}
	return &TDXPKI{pki: p}, nil
}

// NewTDXPKI generates a fresh test chain (for a test whose quotes must chain
// to a root nobody trusts), valid from 2025 to 2075.
func NewTDXPKI() (*TDXPKI, error) {
	p, err := tdxpki.Generate(tdxpki.DefaultNotBefore, tdxpki.DefaultNotAfter)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return &TDXPKI{pki: p}, nil
}

// Root returns the chain's root certificate, as tsm.TDXOptions.Roots takes it.
func (p *TDXPKI) Root() *x509.Certificate { return p.pki.Root }

// RootPEM returns the chain's root certificate as PEM, for a policy file.
func (p *TDXPKI) RootPEM() []byte { return p.pki.RootPEM() }

// TDXTestRoot returns the root of the committed test chain, for
// tsm.TDXOptions.Roots in tests and the demo. Every process gets the same
// certificate, byte for byte.
func TDXTestRoot() (*x509.Certificate, error) {
	p, err := TDXTestPKI()
	if err != nil {
		return nil, err
	}
	return p.Root(), nil
}

// TDXTestRootPEM returns the root of the committed test chain as PEM, for a
// development policy file (tsm.ParseTDXRoots reads it back).
func TDXTestRootPEM() ([]byte, error) {
	p, err := TDXTestPKI()
	if err != nil {
		return nil, err
	}
	return p.RootPEM(), nil
}

// DefaultTDXMRTD returns the MRTD a simulated TD reports when its options
// name none: SHA-384("attest-acme simulated TD").
func DefaultTDXMRTD() []byte {
	h := sha512.Sum384([]byte("attest-acme simulated TD"))
	return h[:]
}

// tdxMRSEAM is the MRSEAM of the simulated TDX module.
func tdxMRSEAM() []byte {
	h := sha512.Sum384([]byte("attest-acme simulated TDX module"))
	return h[:]
}

// TDXOptions describes a simulated TD.
type TDXOptions struct {
	// MRTD is the TD's build-time measurement (48 bytes); nil means
	// DefaultTDXMRTD().
	MRTD []byte
	// RTMR are RTMR0..3 (48 bytes each); a nil entry is 48 zero bytes (a
	// register nothing was extended into).
	RTMR [4][]byte
	// TDAttributes is TD_ATTRIBUTES (bit 0 DEBUG, bit 28 SEPT_VE_DISABLE,
	// ...), used as given.
	TDAttributes uint64
	// Debug sets TD_ATTRIBUTES bit 0: the TD is a debug TD, which a
	// verifier rejects unless its policy allows debug.
	Debug bool
	// PKI signs the quotes; nil means TDXTestPKI().
	PKI *TDXPKI
}

// TDX is a simulated TDX guest: a fake configfs-tsm whose tdx_guest provider
// returns quotes over the inblob (REPORTDATA = inblob), signed by an
// attestation key whose QE report the PKI's PCK key signs. It implements
// evidence.Attester through tsm.Attester, exactly as a real TD would, and is
// safe for concurrent use.
type TDX struct {
	attester *tsm.Attester
	client   configfsi.Client
	root     *x509.Certificate
	// header is the quote header; mrtd, rtmrs and attrs the TD's identity.
	header *pb.Header
	mrtd   []byte
	rtmrs  [][]byte
	attrs  uint64
	ak     *ecdsa.PrivateKey
	akRaw  []byte // X || Y
	// certData is the signed data's certification data (QE report, its
	// signature, QE authentication data, PCK chain), the same in every quote.
	certData       *pb.CertificationData
	signedDataSize uint32
}

// NewTDX returns a simulated TD with a fresh attestation key.
func NewTDX(opts TDXOptions) (*TDX, error) {
	mrtd := opts.MRTD
	if mrtd == nil {
		mrtd = DefaultTDXMRTD()
	}
	if len(mrtd) != tdxMeasurementSize {
		return nil, fmt.Errorf("sim: TDX MRTD is %d bytes, want %d", len(mrtd), tdxMeasurementSize)
	}
	rtmrs := make([][]byte, len(opts.RTMR))
	for i, r := range opts.RTMR {
		switch {
		case r == nil:
			rtmrs[i] = make([]byte, tdxMeasurementSize)
		case len(r) != tdxMeasurementSize:
			return nil, fmt.Errorf("sim: TDX RTMR%d is %d bytes, want %d", i, len(r), tdxMeasurementSize)
		default:
			rtmrs[i] = tdxClone(r)
		}
	}
	attrs := opts.TDAttributes
	if opts.Debug {
		attrs |= TDXAttrDebug
	}
	pki := opts.PKI
	if pki == nil {
		var err error
		if pki, err = TDXTestPKI(); err != nil {
			return nil, err
		}
	}
	ak, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sim: TDX attestation key: %w", err)
	}
	t := &TDX{
		root: pki.Root(),
		ak:   ak,
		header: &pb.Header{
			Version:            abi.QuoteVersion,
			AttestationKeyType: abi.AttestationKeyType,
			TeeType:            abi.TeeTDX,
			PceSvn:             tdxLE16(tdxpki.TestPCESVN),
			QeSvn:              tdxLE16(tdxQESVN),
			QeVendorId:         []byte(tdxQEVendorIntel),
			UserData:           make([]byte, 20),
		},
		mrtd:  tdxClone(mrtd),
		rtmrs: rtmrs,
		attrs: attrs,
	}
	if err := t.certify(pki.pki); err != nil {
		return nil, err
	}
	t.client = newTSMClient(provider{name: tsm.ProviderTDX, outblob: t.outblob})
	t.attester = tsm.NewAttester(t.client)
	return t, nil
}

// certify builds the certification data: the Quoting Enclave's report,
// whose REPORTDATA is SHA-256(attestation key || QE authentication data)
// followed by zeros, signed by the PCK key, and the PCK chain.
func (t *TDX) certify(pki *tdxpki.PKI) error {
	akBytes, err := tdxAttestationKey(&t.ak.PublicKey)
	if err != nil {
		return err
	}
	t.akRaw = akBytes
	auth := make([]byte, tdxQEAuthDataLen)
	for i := range auth {
		auth[i] = byte(i) // what Intel's QE sends
	}
	bind := sha256.Sum256(append(tdxClone(akBytes), auth...))
	qeMREnclave := sha256.Sum256([]byte("attest-acme simulated TD quoting enclave"))
	qeMRSigner := sha256.Sum256([]byte("attest-acme simulated quoting enclave signer"))
	report := &pb.EnclaveReport{
		CpuSvn:     tdxClone(tdxpki.TestCPUSVN),
		Reserved1:  make([]byte, 28),
		Attributes: []byte(tdxQEAttributes),
		MrEnclave:  qeMREnclave[:],
		Reserved2:  make([]byte, 32),
		MrSigner:   qeMRSigner[:],
		Reserved3:  make([]byte, 96),
		IsvProdId:  tdxQEProdID,
		IsvSvn:     tdxQESVN,
		Reserved4:  make([]byte, 60),
		ReportData: append(bind[:], make([]byte, 32)...),
	}
	raw, err := abi.EnclaveReportToAbiBytes(report)
	if err != nil {
		return fmt.Errorf("sim: TDX QE report: %w", err)
	}
	sig, err := tdxSign(pki.PCKKey, raw)
	if err != nil {
		return fmt.Errorf("sim: TDX QE report: %w", err)
	}
	chain := pki.ChainPEM
	qe := &pb.QEReportCertificationData{
		QeReport:          report,
		QeReportSignature: sig,
		QeAuthData:        &pb.QeAuthData{ParsedDataSize: uint32(len(auth)), Data: auth},
		PckCertificateChainData: &pb.PCKCertificateChainData{
			CertificateDataType: tdxCertDataPCKChain,
			Size:                uint32(len(chain)),
			PckCertChain:        tdxClone(chain),
		},
	}
	qeSize := tdxQEReportSize + tdxSignatureSize + tdxAuthSizeField + len(auth) + tdxCertHeaderSize + len(chain)
	t.certData = &pb.CertificationData{
		CertificateDataType:       tdxCertDataQEReport,
		Size:                      uint32(qeSize),
		QeReportCertificationData: qe,
	}
	t.signedDataSize = uint32(tdxSigAndKeySize + tdxCertHeaderSize + qeSize)
	return nil
}

// Quote returns a quote whose REPORTDATA is reportData (64 bytes), signed
// with the TD's attestation key: what the tdx_guest provider returns as
// outblob for that inblob.
func (t *TDX) Quote(reportData []byte) ([]byte, error) {
	if len(reportData) != abi.ReportDataSize {
		return nil, fmt.Errorf("sim: TDX REPORTDATA is %d bytes, want %d", len(reportData), abi.ReportDataSize)
	}
	q := &pb.QuoteV4{
		Header: t.header,
		TdQuoteBody: &pb.TDQuoteBody{
			TeeTcbSvn:      []byte(tdxTEETCBSVN),
			MrSeam:         tdxMRSEAM(),
			MrSignerSeam:   make([]byte, tdxMeasurementSize), // Intel's module: zero
			SeamAttributes: make([]byte, 8),
			TdAttributes:   tdxLE64(t.attrs),
			Xfam:           tdxLE64(tdxXFAM),
			MrTd:           t.mrtd,
			MrConfigId:     make([]byte, tdxMeasurementSize),
			MrOwner:        make([]byte, tdxMeasurementSize),
			MrOwnerConfig:  make([]byte, tdxMeasurementSize),
			Rtmrs:          t.rtmrs,
			ReportData:     reportData,
		},
		SignedDataSize: t.signedDataSize,
	}
	hdr, err := abi.HeaderToAbiBytes(q.Header)
	if err != nil {
		return nil, fmt.Errorf("sim: TDX quote header: %w", err)
	}
	rawBody, err := abi.TdQuoteBodyToAbiBytes(q.TdQuoteBody)
	if err != nil {
		return nil, fmt.Errorf("sim: TDX quote body: %w", err)
	}
	sig, err := tdxSign(t.ak, append(hdr, rawBody...))
	if err != nil {
		return nil, fmt.Errorf("sim: TDX quote: %w", err)
	}
	q.SignedData = &pb.Ecdsa256BitQuoteV4AuthData{
		Signature:           sig,
		EcdsaAttestationKey: t.akRaw,
		CertificationData:   t.certData,
	}
	out, err := abi.QuoteToAbiBytes(q)
	if err != nil {
		return nil, fmt.Errorf("sim: TDX quote: %w", err)
	}
	return out, nil
}

// outblob is the tdx_guest provider: like the kernel's, it takes exactly 64
// bytes of inblob and has no privilege levels.
func (t *TDX) outblob(inblob []byte, _ uint) ([]byte, error) {
	if len(inblob) != abi.ReportDataSize {
		return nil, fmt.Errorf("tdx_guest takes a %d-byte inblob, got %d: %w", abi.ReportDataSize, len(inblob), syscall.EINVAL)
	}
	return t.Quote(inblob)
}

// Client returns the TD's fake configfs-tsm, for a tsm.Attester with other
// options.
func (t *TDX) Client() configfsi.Client { return t.client }

// Roots are the trust anchors the TD's quotes chain to (the root of its
// PKI), as tsm.TDXOptions.Roots takes them.
func (t *TDX) Roots() []*x509.Certificate { return []*x509.Certificate{t.root} }

// BindingHash is SHA-512 (the inblob is 64 bytes).
func (t *TDX) BindingHash() crypto.Hash { return t.attester.BindingHash() }

// The simulated TD is an evidence.Attester.
var _ evidence.Attester = (*TDX)(nil)

// Attest returns a configfs-tsm report map (provider tdx_guest, outblob the
// quote over d) as tsm.Attester does.
func (t *TDX) Attest(ctx context.Context, d []byte) (evidence.Evidence, error) {
	return t.attester.Attest(ctx, d)
}

// tdxSign signs SHA-256(msg) with key and returns r || s, 32 bytes each, as
// the quote format stores ECDSA signatures.
func tdxSign(key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	sig := make([]byte, tdxSignatureSize)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig, nil
}

// tdxAttestationKey returns a P-256 public key as the quote stores it: X || Y.
func tdxAttestationKey(pub *ecdsa.PublicKey) ([]byte, error) {
	b, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, fmt.Errorf("sim: TDX attestation key: %w", err)
	}
	return b[1:], nil
}

func tdxLE16(v uint16) []byte  { return binary.LittleEndian.AppendUint16(nil, v) }
func tdxLE64(v uint64) []byte  { return binary.LittleEndian.AppendUint64(nil, v) }
func tdxClone(b []byte) []byte { return append([]byte(nil), b...) }
