package inspect

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fxamacker/cbor/v2"
	sevabi "github.com/google/go-sev-guest/abi"
	tdxabi "github.com/google/go-tdx-guest/abi"
)

// maxDepth bounds how deep recognition descends into values that may hold
// anything (a CMW record's value, a PEM block): enough for a certificate
// whose extension holds a record holding an EAR, and no recursion bomb.
const maxDepth = 4

// notShape reports that input is not of a recogniser's kind at first sight
// (a JSON recogniser given CBOR): the next recogniser is tried, and the
// reason is summed up with the others' when none applies.
type notShape string

func (e notShape) Error() string { return string(e) }

// recogniser tries one kind of object on the input bytes.
type recogniser struct {
	name string
	try  func(in *inspector, b []byte, depth int) (*Node, error)
}

// recognisers lists, in order, every kind of object that may stand alone as
// input. Built on each call: no package-level state.
func recognisers() []recogniser {
	return []recogniser{
		{"JSON (device-attest-01 payload, EAR claims)", (*inspector).recogniseJSON},
		{"compact JWS (EAR)", (*inspector).recogniseJWS},
		{"CBOR (kc, attestation object, bundle, configfs-tsm report, TPM quote, CMW record)", (*inspector).recogniseCBOR},
		{"DER (X.509 certificate)", (*inspector).recogniseDER},
		{"raw SEV-SNP report", (*inspector).recogniseSNP},
		{"raw TDX quote", (*inspector).recogniseTDX},
	}
}

// recognise returns the node for b, or why no recogniser took it.
func (in *inspector) recognise(b []byte, depth int) (*Node, string) {
	if len(b) == 0 {
		return nil, "empty"
	}
	if depth > maxDepth {
		return nil, fmt.Sprintf("nested more than %d levels deep", maxDepth)
	}
	var failures []string
	for _, r := range recognisers() {
		n, err := r.try(in, b, depth)
		if err == nil {
			return n, ""
		}
		if _, ok := errors.AsType[notShape](err); ok {
			continue
		}
		failures = append(failures, err.Error())
	}
	if len(failures) > 0 {
		return nil, strings.Join(failures, "; ")
	}
	if isText(b) {
		return nil, "text that is neither a JSON object nor a compact JWS (header.payload.signature)"
	}
	return nil, fmt.Sprintf("binary starting with %s, which is none of: CBOR (tag 601, map or array), DER, a SEV-SNP report (%d bytes) or a TDX quote",
		leading(b), sevabi.ReportSize)
}

// leading describes the first bytes of b for error messages.
func leading(b []byte) string {
	n := min(len(b), 8)
	return fmt.Sprintf("0x%x", b[:n])
}

// recogniseJSON takes a JSON object: a device-attest-01 payload, or an EAR
// claims set without its signature.
func (in *inspector) recogniseJSON(b []byte, depth int) (*Node, error) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return nil, notShape("not a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(t, &m); err != nil {
		return nil, notShape("not a JSON object")
	}
	switch {
	case m["attObj"] != nil:
		return in.payload(t)
	case m["eat_profile"] != nil:
		return in.earClaims(t)
	}
	return nil, fmt.Errorf("a JSON object with members %s, which is neither a device-attest-01 payload (attObj) nor EAR claims (eat_profile)", memberNames(m))
}

// memberNames lists the member names of a JSON object, sorted.
func memberNames(m map[string]json.RawMessage) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, fmt.Sprintf("%q", k))
	}
	slices.Sort(names)
	return "[" + strings.Join(names, ", ") + "]"
}

// recogniseJWS takes a compact JWS: an EAR, or another JWT shown as such.
func (in *inspector) recogniseJWS(b []byte, depth int) (*Node, error) {
	t := bytes.TrimSpace(b)
	if bytes.Count(t, []byte{'.'}) != 2 || !isText(t) || bytes.ContainsAny(t, " \t\r\n") {
		return nil, notShape("not a compact JWS (three base64url parts)")
	}
	n, _, err := in.jws(t)
	return n, err
}

// CBOR major types (RFC 8949 §3.1) that select a recogniser.
const (
	cborMajorArray = 4
	cborMajorMap   = 5
	cborMajorTag   = 6
)

// cborMajorName names the major types recogniseCBOR takes.
func cborMajorName(major byte) string {
	switch major {
	case cborMajorArray:
		return "array"
	case cborMajorMap:
		return "map"
	}
	return "tag"
}

// uccsTagHead is the head of CBOR tag 601 (RFC 9781), which a kc starts with.
const uccsTagHead = "\xd9\x02\x59"

// recogniseCBOR takes the CBOR objects: a kc (tag 601), the maps
// (attestation object, bundle, configfs-tsm report, TPM quote, chosen by
// their keys) and CMW records (arrays or other tags).
func (in *inspector) recogniseCBOR(b []byte, depth int) (*Node, error) {
	// Every CBOR object recognised here starts with a byte above 0x7e, so
	// text is never one of them.
	major := b[0] >> 5
	if isText(b) || (major != cborMajorArray && major != cborMajorMap && major != cborMajorTag) {
		return nil, notShape("not a CBOR map, array or tag")
	}
	if err := cbor.Wellformed(b); err != nil {
		return nil, fmt.Errorf("CBOR %s that is not one well-formed item: %w", cborMajorName(major), err)
	}
	switch major {
	case cborMajorTag:
		if bytes.HasPrefix(b, []byte(uccsTagHead)) {
			return in.kc(b)
		}
		return in.cmwRecord(b, depth)
	case cborMajorArray:
		return in.cmwRecord(b, depth)
	}
	var m map[any]cbor.RawMessage
	if err := cbor.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("a CBOR map that does not decode: %w", err)
	}
	has := func(k string) bool { _, ok := m[k]; return ok }
	switch {
	case has("fmt") || has("attStmt"):
		return in.attObj(b)
	case has("__cmwc_t"):
		return in.bundle(b)
	case has("provider") || has("outblob"):
		n, _, err := in.tsmReport(b)
		return n, err
	case has("quoted") || has("ak"):
		n, _, err := in.tpmQuote(b)
		return n, err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, fmt.Sprintf("%#v", k))
	}
	slices.Sort(keys)
	return nil, fmt.Errorf("a CBOR map with keys [%s], which is none of: attestation object (fmt, attStmt), bundle (__cmwc_t), configfs-tsm report (provider, outblob), TPM quote (ak, quoted, sig, pcrs)",
		strings.Join(keys, ", "))
}

// recogniseDER takes an X.509 certificate in DER.
func (in *inspector) recogniseDER(b []byte, depth int) (*Node, error) {
	// A certificate is a SEQUENCE of more than 127 bytes, whose length
	// octets are not printable: text is never one.
	if b[0] != 0x30 || isText(b) { // an ASN.1 SEQUENCE
		return nil, notShape("not DER (no SEQUENCE)")
	}
	return in.certificate(b, depth)
}

// recogniseSNP takes a bare SEV-SNP ATTESTATION_REPORT, as configfs-tsm's
// outblob holds it.
func (in *inspector) recogniseSNP(b []byte, depth int) (*Node, error) {
	if len(b) != sevabi.ReportSize {
		return nil, notShape(fmt.Sprintf("not a SEV-SNP report (%d bytes, want %d)", len(b), sevabi.ReportSize))
	}
	n, _, err := snpReport(b)
	return n, err
}

// recogniseTDX takes a bare TDX quote, as configfs-tsm's outblob holds it.
func (in *inspector) recogniseTDX(b []byte, depth int) (*Node, error) {
	if len(b) < tdxabi.QuoteMinSize || binary.LittleEndian.Uint16(b[0:2]) != tdxabi.QuoteVersion || binary.LittleEndian.Uint32(b[4:8]) != tdxabi.TeeTDX {
		return nil, notShape("not a TDX quote (no version 4 TDX quote header)")
	}
	n, _, err := tdxQuote(b)
	return n, err
}

// opaque is a node for bytes that could not be decoded: why, and the bytes.
func opaque(title string, b []byte, why string) *Node {
	n := &Node{Kind: KindOpaque, Title: title}
	if why != "" {
		n.add("error", "error", why)
	}
	n.add("size", "size", len(b))
	n.add("bytes", "bytes", Hex(b))
	return n
}
