package inspect

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	sevabi "github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	tdxabi "github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/pcs"
	tdxpb "github.com/google/go-tdx-guest/proto/tdx"
	tdxverify "github.com/google/go-tdx-guest/verify"
)

// notAppraised is the note on every piece of TEE evidence: inspect decodes,
// it does not verify.
const notAppraised = "not verified here: the signature and certificate chain are not checked (appraisal is the verifier's)"

// tsmReport decodes a configfs-tsm report map (docs/protocol.md §4) with
// tsm.ParseReport, and its outblob with the TEE's library.
func (in *inspector) tsmReport(b []byte) (*Node, freshness, error) {
	r, err := tsm.ParseReport(b)
	if err != nil {
		return nil, freshness{}, err
	}
	n := &Node{Kind: KindTSMReport, Title: fmt.Sprintf("configfs-tsm report (CBOR map, %d bytes)", len(b))}
	n.add("media_type", "media type", evidence.MediaTypeTSMReport)
	p := n.add("provider", "provider", r.Provider)
	var (
		out   *Node
		fresh freshness
	)
	switch r.Provider {
	case tsm.ProviderSNP:
		p.Note = "(AMD SEV-SNP)"
		fresh.field = "REPORT_DATA"
		if out, fresh.value, err = snpReport(r.OutBlob); err != nil {
			out, fresh.why = opaque("SEV-SNP report: not valid", r.OutBlob, err.Error()), "the SEV-SNP report does not parse"
		}
	case tsm.ProviderTDX:
		p.Note = "(Intel TDX)"
		fresh.field = "REPORTDATA"
		if out, fresh.value, err = tdxQuote(r.OutBlob); err != nil {
			out, fresh.why = opaque("TDX quote: not valid", r.OutBlob, err.Error()), "the TDX quote does not parse"
		}
	default:
		p.Note = "(Arm CCA)"
		fresh.field, fresh.why = "challenge", "Arm CCA tokens are not decoded here"
		out = opaque("Arm CCA attestation token (not decoded here)", r.OutBlob, "")
	}
	n.add("outblob", "outblob", out)
	if len(r.AuxBlob) > 0 {
		if r.Provider == tsm.ProviderSNP {
			n.add("auxblob", "auxblob", snpCertTable(r.AuxBlob))
		} else {
			n.add("auxblob", "auxblob", opaque("auxiliary data", r.AuxBlob, ""))
		}
	}
	return n, fresh, nil
}

// snpReport decodes a SEV-SNP ATTESTATION_REPORT (AMD 56860, Table 23) with
// go-sev-guest's abi.ReportToProto, and returns it with its REPORT_DATA.
func snpReport(b []byte) (*Node, []byte, error) {
	if len(b) != sevabi.ReportSize {
		return nil, nil, fmt.Errorf("sev-snp: %d bytes, want %d (an ATTESTATION_REPORT)", len(b), sevabi.ReportSize)
	}
	r, err := sevabi.ReportToProto(b)
	if err != nil {
		return nil, nil, fmt.Errorf("sev-snp: %w", err)
	}
	n := &Node{Kind: KindSNPReport, Title: fmt.Sprintf("AMD SEV-SNP ATTESTATION_REPORT (version %d, %d bytes)", r.GetVersion(), len(b))}
	n.note("%s", notAppraised)
	n.add("version", "VERSION", r.GetVersion())
	n.add("guest_svn", "GUEST_SVN", r.GetGuestSvn())

	policy, err := sevabi.ParseSnpPolicy(r.GetPolicy())
	if err != nil { // ReportToProto has checked it; keep the raw value if not
		n.add("policy", "POLICY", fmt.Sprintf("0x%x (%v)", r.GetPolicy(), err))
	} else {
		pf := n.add("policy", "POLICY", Group{
			field("raw", "raw", fmt.Sprintf("0x%016x", r.GetPolicy())),
			field("debug", "DEBUG", policy.Debug),
			field("smt", "SMT", policy.SMT),
			field("migrate_ma", "MIGRATE_MA", policy.MigrateMA),
			field("single_socket", "SINGLE_SOCKET", policy.SingleSocket),
			field("cxl_allowed", "CXL_ALLOW", policy.CXLAllowed),
			field("mem_aes_256_xts", "MEM_AES_256_XTS", policy.MemAES256XTS),
			field("rapl_dis", "RAPL_DIS", policy.RAPLDis),
			field("ciphertext_hiding_dram", "CIPHERTEXT_HIDING_DRAM", policy.CipherTextHidingDRAM),
			field("page_swap_disable", "PAGE_SWAP_DISABLE", policy.PageSwapDisable),
			field("abi_minimum", "ABI minimum", fmt.Sprintf("%d.%d", policy.ABIMajor, policy.ABIMinor)),
		})
		pf.Note = fmt.Sprintf("0x%x", r.GetPolicy())
		if policy.Debug {
			pf.Note += "  DEBUG ALLOWED"
			n.note("POLICY allows DEBUG: the host can read and change this guest's memory")
		}
	}
	n.add("family_id", "FAMILY_ID", Hex(r.GetFamilyId()))
	n.add("image_id", "IMAGE_ID", Hex(r.GetImageId()))
	n.add("vmpl", "VMPL", r.GetVmpl())
	n.add("signature_algo", "SIGNATURE_ALGO", r.GetSignatureAlgo()).Note = snpSigAlgo(r.GetSignatureAlgo())
	n.Fields = append(n.Fields,
		snpTCB("current_tcb", "CURRENT_TCB", r.GetCurrentTcb()),
		snpTCB("reported_tcb", "REPORTED_TCB", r.GetReportedTcb()),
		snpTCB("committed_tcb", "COMMITTED_TCB", r.GetCommittedTcb()),
		snpTCB("launch_tcb", "LAUNCH_TCB", r.GetLaunchTcb()))
	n.add("platform_info", "PLATFORM_INFO", fmt.Sprintf("0x%x", r.GetPlatformInfo()))
	if info, err := sevabi.ParseSignerInfo(r.GetSignerInfo()); err != nil {
		n.add("signer_info", "SIGNER_INFO", fmt.Sprintf("0x%x (%v)", r.GetSignerInfo(), err))
	} else {
		n.Fields = append(n.Fields, Field{Key: "signer_info", Label: "SIGNER_INFO",
			Value: Group{field("signing_key", "SIGNING_KEY", info.SigningKey.String()),
				field("mask_chip_key", "MASK_CHIP_KEY", info.MaskChipKey),
				field("author_key_en", "AUTHOR_KEY_EN", info.AuthorKeyEn)},
			Text: fmt.Sprintf("signed by %s, MASK_CHIP_KEY %s, AUTHOR_KEY_EN %s", info.SigningKey, scalarText(info.MaskChipKey), scalarText(info.AuthorKeyEn))})
	}
	n.add("report_data", "REPORT_DATA", Hex(r.GetReportData()))
	n.add("measurement", "MEASUREMENT", Hex(r.GetMeasurement()))
	n.add("host_data", "HOST_DATA", Hex(r.GetHostData()))
	n.add("id_key_digest", "ID_KEY_DIGEST", Hex(r.GetIdKeyDigest()))
	n.add("author_key_digest", "AUTHOR_KEY_DIGEST", Hex(r.GetAuthorKeyDigest()))
	n.add("report_id", "REPORT_ID", Hex(r.GetReportId()))
	n.add("report_id_ma", "REPORT_ID_MA", Hex(r.GetReportIdMa()))
	n.add("chip_id", "CHIP_ID", Hex(r.GetChipId()))
	if fms := r.GetCpuid1EaxFms(); fms != 0 {
		n.add("cpuid_fms", "CPUID_FAM/MOD/STEP", fmt.Sprintf("0x%08x", fms))
		n.add("product_line", "product line", kds.ProductLineFromFms(fms))
	}
	n.add("current_version", "CURRENT firmware", fmt.Sprintf("%d.%d build %d", r.GetCurrentMajor(), r.GetCurrentMinor(), r.GetCurrentBuild()))
	n.add("committed_version", "COMMITTED firmware", fmt.Sprintf("%d.%d build %d", r.GetCommittedMajor(), r.GetCommittedMinor(), r.GetCommittedBuild()))
	n.Fields = append(n.Fields, Field{Key: "signature", Value: Hex(r.GetSignature()), JSONOnly: true})
	return n, r.GetReportData(), nil
}

// snpSigAlgo names a SIGNATURE_ALGO value (AMD 56860, Table 139).
func snpSigAlgo(v uint32) string {
	if v == 1 {
		return "(ECDSA P-384 with SHA-384)"
	}
	return "(unknown algorithm)"
}

// snpTCB describes a TCB_VERSION: raw, and its security patch levels as
// go-sev-guest's kds decomposes them (through tsm.NewSNPTCB).
func snpTCB(key, label string, raw uint64) Field {
	t := tsm.NewSNPTCB(raw)
	return Field{Key: key, Label: label,
		Value: Group{
			field("raw", "raw", fmt.Sprintf("0x%016x", raw)),
			field("boot_loader", "boot loader", t.BootLoader),
			field("tee", "TEE", t.TEE),
			field("snp", "SNP", t.SNP),
			field("microcode", "microcode", t.Microcode),
		},
		Text: fmt.Sprintf("0x%016x (boot loader %d, TEE %d, SNP %d, microcode %d)", raw, t.BootLoader, t.TEE, t.SNP, t.Microcode)}
}

// snpCertTable decodes the GHCB certificate table of a SEV-SNP auxblob
// with go-sev-guest's abi, and each certificate in it.
func snpCertTable(b []byte) *Node {
	n := &Node{Kind: KindSNPCerts, Title: fmt.Sprintf("SEV-SNP certificate table (%d bytes)", len(b))}
	headers, err := sevabi.ParseSnpCertTableHeader(b)
	if err != nil {
		return opaque("SEV-SNP certificate table: not valid", b, err.Error())
	}
	// go-sev-guest adds offset and length in 32 bits and would slice past
	// the end; check in 64 bits before letting it copy the entries.
	for i, h := range headers {
		if end := uint64(h.Offset) + uint64(h.Length); end > uint64(len(b)) {
			return opaque("SEV-SNP certificate table: not valid", b, fmt.Sprintf("entry %d (%s) ends at byte %d, past the end of the table", i, h.GUID, end))
		}
	}
	var table sevabi.CertTable
	if err := table.Unmarshal(b); err != nil {
		return opaque("SEV-SNP certificate table: not valid", b, err.Error())
	}
	for _, e := range table.Entries {
		name := snpCertName(e.GUID.String())
		c := certSummary(e.RawCert)
		c.Fields = append([]Field{field("guid", "GUID", e.GUID.String())}, c.Fields...)
		key := strings.ToLower(name)
		if name == "" {
			name, key = "GUID "+e.GUID.String(), "guid_"+e.GUID.String()
		}
		n.add(key, name, c)
	}
	return n
}

// snpCertName names a certificate table GUID (GHCB 56421, §4.1.8.1).
func snpCertName(guid string) string {
	switch guid {
	case sevabi.VcekGUID:
		return "VCEK"
	case sevabi.VlekGUID:
		return "VLEK"
	case sevabi.AskGUID:
		return "ASK"
	case sevabi.ArkGUID:
		return "ARK"
	case sevabi.AsvkGUID:
		return "ASVK"
	}
	return ""
}

// TD_ATTRIBUTES bits (Intel TDX Module ABI, TDX_ATTRIBUTES).
const (
	tdAttrDebug         = 1 << 0
	tdAttrSEPTVEDisable = 1 << 28
	tdAttrPKS           = 1 << 30
	tdAttrKL            = 1 << 31
	tdAttrPerfmon       = 1 << 63
)

// tdxQuote decodes a TDX quote (version 4) with go-tdx-guest's
// abi.QuoteToProto, and returns it with its REPORTDATA.
func tdxQuote(b []byte) (_ *Node, _ []byte, err error) {
	// go-tdx-guest's abi slices by lengths the quote declares without
	// checking them all, and panics on some malformed quotes (see
	// evidence/tsm's FuzzTDXAppraise seeds): a panic is a malformed quote.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tdx: malformed quote (go-tdx-guest abi: %v)", r)
		}
	}()
	parsed, err := tdxabi.QuoteToProto(b)
	if err != nil {
		return nil, nil, fmt.Errorf("tdx: %w", err)
	}
	q, ok := parsed.(*tdxpb.QuoteV4)
	if !ok {
		return nil, nil, fmt.Errorf("tdx: go-tdx-guest returned a %T, want a version 4 quote", parsed)
	}
	h, body := q.GetHeader(), q.GetTdQuoteBody()
	n := &Node{Kind: KindTDXQuote, Title: fmt.Sprintf("Intel TDX quote (version %d, %d bytes)", h.GetVersion(), len(b))}
	n.note("%s", notAppraised)
	n.add("header", "header", Group{
		field("version", "version", h.GetVersion()),
		field("attestation_key_type", "attestation key type", h.GetAttestationKeyType()),
		field("tee_type", "TEE type", fmt.Sprintf("0x%x", h.GetTeeType())),
		field("qe_svn", "QE SVN", Hex(h.GetQeSvn())),
		field("pce_svn", "PCE SVN", Hex(h.GetPceSvn())),
		field("qe_vendor_id", "QE vendor ID", Hex(h.GetQeVendorId())),
	})
	n.add("tee_tcb_svn", "TEE_TCB_SVN", Hex(body.GetTeeTcbSvn()))
	n.add("mrseam", "MRSEAM", Hex(body.GetMrSeam()))
	n.add("mrsignerseam", "MRSIGNERSEAM", Hex(body.GetMrSignerSeam()))
	n.add("seam_attributes", "SEAMATTRIBUTES", Hex(body.GetSeamAttributes()))
	if attrs := body.GetTdAttributes(); len(attrs) == 8 {
		v := binary.LittleEndian.Uint64(attrs)
		f := n.add("td_attributes", "TD_ATTRIBUTES", Group{
			field("raw", "raw", fmt.Sprintf("0x%016x", v)),
			field("debug", "DEBUG", v&tdAttrDebug != 0),
			field("sept_ve_disable", "SEPT_VE_DISABLE", v&tdAttrSEPTVEDisable != 0),
			field("pks", "PKS", v&tdAttrPKS != 0),
			field("kl", "KL", v&tdAttrKL != 0),
			field("perfmon", "PERFMON", v&tdAttrPerfmon != 0),
		})
		f.Note = fmt.Sprintf("0x%016x", v)
		if v&tdAttrDebug != 0 {
			f.Note += "  DEBUG TD"
			n.note("TD_ATTRIBUTES.DEBUG is set: the host can read and change this TD's state")
		}
	} else {
		n.add("td_attributes", "TD_ATTRIBUTES", Hex(attrs))
	}
	n.add("xfam", "XFAM", Hex(body.GetXfam()))
	n.add("mrtd", "MRTD", Hex(body.GetMrTd()))
	n.add("mrconfigid", "MRCONFIGID", Hex(body.GetMrConfigId()))
	n.add("mrowner", "MROWNER", Hex(body.GetMrOwner()))
	n.add("mrownerconfig", "MROWNERCONFIG", Hex(body.GetMrOwnerConfig()))
	for i, r := range body.GetRtmrs() {
		n.add(fmt.Sprintf("rtmr%d", i), fmt.Sprintf("RTMR%d", i), Hex(r))
	}
	n.add("reportdata", "REPORTDATA", Hex(body.GetReportData()))

	if qe := q.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetQeReport(); qe != nil {
		n.add("qe_report", "QE report", Group{
			field("mrsigner", "MRSIGNER", Hex(qe.GetMrSigner())),
			field("isv_prod_id", "ISVPRODID", qe.GetIsvProdId()),
			field("isv_svn", "ISVSVN", qe.GetIsvSvn()),
		})
	}
	if chain, err := tdxverify.ExtractChainFromQuote(q); err != nil {
		n.add("pck_chain", "PCK chain", "not readable: "+err.Error())
	} else {
		g := Group{}
		if c := chain.PCKCertificate; c != nil {
			g = append(g, field("pck", "PCK", c.Subject.String()))
			if ext, err := pcs.PckCertificateExtensions(c); err == nil {
				g = append(g, field("fmspc", "FMSPC", strings.ToLower(ext.FMSPC)))
			}
		}
		if c := chain.IntermediateCertificate; c != nil {
			g = append(g, field("intermediate", "intermediate", c.Subject.String()))
		}
		if c := chain.RootCertificate; c != nil {
			g = append(g, field("root", "root", c.Subject.String()))
		}
		n.add("pck_chain", "PCK chain", g)
	}
	n.Fields = append(n.Fields, Field{Key: "signature", Value: Hex(q.GetSignedData().GetSignature()), JSONOnly: true})
	return n, body.GetReportData(), nil
}
