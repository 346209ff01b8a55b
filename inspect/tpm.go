package inspect

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/google/go-tpm/tpm2"
)

// tpmFreshnessField names where a TPM quote carries D.
const tpmFreshnessField = "extraData (qualifyingData)"

// tpmQuote decodes a TPM quote map (docs/protocol.md §4) with tpm.ParseQuote
// and the TPM structures inside it with go-tpm. Nothing is verified: the AK
// is not trusted, the signature not checked (that is appraisal).
func (in *inspector) tpmQuote(b []byte) (*Node, freshness, error) {
	q, err := tpm.ParseQuote(b)
	if err != nil {
		return nil, freshness{}, err
	}
	fresh := freshness{field: tpmFreshnessField, why: "quoted is not a TPMS_ATTEST"}
	n := &Node{Kind: KindTPMQuote, Title: fmt.Sprintf("TPM 2.0 quote (CBOR map, %d bytes)", len(b))}
	n.add("media_type", "media type", evidence.MediaTypeTPMQuote)
	n.note("not verified here: the AK is not checked against any anchor and the signature is not checked (appraisal is the verifier's)")

	n.Fields = append(n.Fields, tpmAK(q.AK))

	if attest, err := tpm.UnmarshalExact[tpm2.TPMSAttest](q.Quoted); err != nil {
		n.add("quoted", "quoted", Group{field("error", "error", "not a TPMS_ATTEST: "+err.Error()), field("bytes", "bytes", Hex(q.Quoted))})
	} else {
		n.add("quoted", "quoted (TPMS_ATTEST)", tpmAttest(attest))
		fresh = freshness{field: tpmFreshnessField, value: attest.ExtraData.Buffer}
	}

	if sig, err := tpm.UnmarshalExact[tpm2.TPMTSignature](q.Sig); err != nil {
		n.add("sig", "sig", Group{field("error", "error", "not a TPMT_SIGNATURE: "+err.Error()), field("bytes", "bytes", Hex(q.Sig))})
	} else {
		n.Fields = append(n.Fields, tpmSignature(sig))
	}

	pcrs := Group{}
	for _, bank := range slices.Sorted(maps.Keys(q.PCRs)) {
		vals := q.PCRs[bank]
		g := Group{}
		for _, i := range slices.Sorted(maps.Keys(vals)) {
			g = append(g, field(strconv.Itoa(i), "PCR "+strconv.Itoa(i), Hex(vals[i])))
		}
		pcrs = append(pcrs, field(bank.String(), bank.String(), g))
	}
	n.add("pcrs", "pcrs", pcrs)

	if len(q.AKChain) > 0 {
		chain := List{}
		for _, der := range q.AKChain {
			chain = append(chain, certSummary(der))
		}
		n.add("akchain", "akchain", chain)
	}
	return n, fresh, nil
}

// tpmAK describes the attestation key's TPMT_PUBLIC.
func tpmAK(b []byte) Field {
	pub, err := tpm.UnmarshalExact[tpm2.TPMTPublic](b)
	if err != nil {
		return field("ak", "ak", Group{field("error", "error", "not a TPMT_PUBLIC: "+err.Error()), field("bytes", "bytes", Hex(b))})
	}
	key, err := tpm.PublicKey(pub)
	attrs := tpmObjectAttributes(pub.ObjectAttributes)
	if err != nil {
		return field("ak", "ak (TPMT_PUBLIC)", Group{field("error", "error", err.Error()), field("attributes", "attributes", attrs)})
	}
	f := keyField("ak", "ak (TPMT_PUBLIC)", key)
	g := f.Value.(Group)
	g = append(g, field("name_alg", "name alg", tpm.Bank(pub.NameAlg).String()), field("attributes", "attributes", attrs))
	f.Value = g
	f.Text += " [" + strings.Join(attrs, ", ") + "]"
	return f
}

// tpmObjectAttributes names the TPMA_OBJECT bits that say what an AK may do.
func tpmObjectAttributes(a tpm2.TPMAObject) []string {
	var out []string
	for _, b := range []struct {
		set  bool
		name string
	}{
		{a.FixedTPM, "fixedTPM"}, {a.FixedParent, "fixedParent"}, {a.SensitiveDataOrigin, "sensitiveDataOrigin"},
		{a.UserWithAuth, "userWithAuth"}, {a.AdminWithPolicy, "adminWithPolicy"}, {a.NoDA, "noDA"},
		{a.Restricted, "restricted"}, {a.Decrypt, "decrypt"}, {a.SignEncrypt, "sign"},
	} {
		if b.set {
			out = append(out, b.name)
		}
	}
	return out
}

// tpmAttest describes a TPMS_ATTEST.
func tpmAttest(a *tpm2.TPMSAttest) Group {
	magic := fmt.Sprintf("0x%08x", uint32(a.Magic))
	if a.Magic == tpm2.TPMGeneratedValue {
		magic += " (TPM_GENERATED_VALUE)"
	}
	typ := fmt.Sprintf("0x%04x", uint16(a.Type))
	if a.Type == tpm2.TPMSTAttestQuote {
		typ += " (TPM_ST_ATTEST_QUOTE)"
	}
	g := Group{
		field("magic", "magic", magic),
		field("type", "type", typ),
		field("qualified_signer", "qualifiedSigner", Hex(a.QualifiedSigner.Buffer)),
		field("extra_data", "extraData", Hex(a.ExtraData.Buffer)),
		field("clock", "clock (ms)", a.ClockInfo.Clock),
		field("reset_count", "resetCount", a.ClockInfo.ResetCount),
		field("restart_count", "restartCount", a.ClockInfo.RestartCount),
		field("safe", "safe", bool(a.ClockInfo.Safe)),
		field("firmware_version", "firmwareVersion", fmt.Sprintf("0x%016x", a.FirmwareVersion)),
	}
	g[3].Note = "(the quote's qualifyingData; D in this protocol)"
	if a.Type != tpm2.TPMSTAttestQuote {
		return g
	}
	info, err := a.Attested.Quote()
	if err != nil {
		return append(g, field("quote_error", "quote", err.Error()))
	}
	sel := List{}
	for _, s := range info.PCRSelect.PCRSelections {
		sel = append(sel, tpm.Bank(s.Hash).String()+":"+pcrIndices(s.PCRSelect))
	}
	return append(g,
		field("pcr_select", "pcrSelect", sel),
		field("pcr_digest", "pcrDigest", Hex(info.PCRDigest.Buffer)))
}

// pcrIndices lists the PCRs a TPMS_PCR_SELECTION bitmap selects (TPM 2.0
// Part 2 §10.6.1: bit i of octet i/8 selects PCR i), as "0,1,2".
func pcrIndices(bitmap []byte) string {
	var idx []string
	for i := range len(bitmap) * 8 {
		if bitmap[i/8]&(1<<(i%8)) != 0 {
			idx = append(idx, strconv.Itoa(i))
		}
	}
	if len(idx) == 0 {
		return "(none)"
	}
	return strings.Join(idx, ",")
}

// tpmSignature describes a TPMT_SIGNATURE: its scheme and hash.
func tpmSignature(s *tpm2.TPMTSignature) Field {
	var scheme string
	var hash tpm2.TPMIAlgHash
	switch s.SigAlg {
	case tpm2.TPMAlgECDSA:
		scheme = "ECDSA"
		if d, err := s.Signature.ECDSA(); err == nil {
			hash = d.Hash
		}
	case tpm2.TPMAlgRSASSA:
		scheme = "RSASSA-PKCS1-v1_5"
		if d, err := s.Signature.RSASSA(); err == nil {
			hash = d.Hash
		}
	case tpm2.TPMAlgRSAPSS:
		scheme = "RSASSA-PSS"
		if d, err := s.Signature.RSAPSS(); err == nil {
			hash = d.Hash
		}
	default:
		scheme = fmt.Sprintf("0x%04x", uint16(s.SigAlg))
	}
	h := tpm.Bank(hash).String()
	return Field{Key: "sig", Label: "sig (TPMT_SIGNATURE)",
		Value: Group{field("scheme", "scheme", scheme), field("hash", "hash", h)},
		Text:  scheme + " with " + h + " (not verified)"}
}
