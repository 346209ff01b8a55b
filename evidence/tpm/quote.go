package tpm

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/fxamacker/cbor/v2"
)

// The quote map (docs/protocol.md §4), media type evidence.MediaTypeTPMQuote:
//
//	{"ak": bstr, "quoted": bstr, "sig": bstr,
//	 "pcrs": {uint => {uint => bstr}}, ? "akchain": [+ bstr]}
const (
	keyAK      = "ak"
	keyQuoted  = "quoted"
	keySig     = "sig"
	keyPCRs    = "pcrs"
	keyAKChain = "akchain"
)

// Bounds on the fields of a quote map. The whole map is at most
// evidence.MaxItemSize bytes.
const (
	// maxAKSize bounds "ak": a TPMT_PUBLIC of an RSA-4096 key with a
	// SHA-512 policy is about 600 bytes.
	maxAKSize = 1 << 10
	// maxQuotedSize bounds "quoted": a TPMS_ATTEST of a quote is a few
	// hundred bytes.
	maxQuotedSize = 1 << 10
	// maxSigSize bounds "sig": an RSA-4096 TPMT_SIGNATURE is 518 bytes.
	maxSigSize = 1 << 10
	// MaxAKChain bounds the certificates in "akchain".
	MaxAKChain = 4
	// maxCertSize bounds each certificate in "akchain".
	maxCertSize = 8 << 10
)

// quoteDec decodes the quote map: strict (duplicate keys, indefinite
// lengths, deep nesting rejected), and room for NumPCRs entries in a bank.
// It is built once and never changed.
var quoteDec = evidence.StrictDecMode(32)

// Quote is a decoded quote map: a TPM2_Quote and what is needed to check it.
type Quote struct {
	// AK is the attestation key's TPMT_PUBLIC, TPM wire encoding.
	AK []byte
	// Quoted is the TPMS_ATTEST the TPM signed.
	Quoted []byte
	// Sig is the TPMT_SIGNATURE over Quoted.
	Sig []byte
	// PCRs holds the value of every quoted PCR, by bank and index.
	PCRs PCRValues
	// AKChain holds the AK's certificates (DER), leaf first, or nothing.
	AKChain [][]byte
}

// quoteWire is the quote map as it is encoded.
type quoteWire struct {
	AK      []byte                      `cbor:"ak"`
	Quoted  []byte                      `cbor:"quoted"`
	Sig     []byte                      `cbor:"sig"`
	PCRs    map[uint16]map[uint8][]byte `cbor:"pcrs"`
	AKChain [][]byte                    `cbor:"akchain,omitempty"`
}

// Marshal encodes the quote map with deterministic CBOR, after the same
// checks ParseQuote applies.
func (q *Quote) Marshal() ([]byte, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	w := quoteWire{AK: q.AK, Quoted: q.Quoted, Sig: q.Sig, AKChain: q.AKChain,
		PCRs: make(map[uint16]map[uint8][]byte, len(q.PCRs))}
	for b, vals := range q.PCRs {
		m := make(map[uint8][]byte, len(vals))
		for i, v := range vals {
			m[uint8(i)] = v
		}
		w.PCRs[uint16(b)] = m
	}
	out, err := evidence.DetEncMode().Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("tpm quote: encoding: %w", err)
	}
	if len(out) > evidence.MaxItemSize {
		return nil, fmt.Errorf("tpm quote: %d bytes, over the limit of %d", len(out), evidence.MaxItemSize)
	}
	return out, nil
}

// ParseQuote decodes a quote map strictly: at most evidence.MaxItemSize
// bytes; exactly the keys "ak", "quoted", "sig", "pcrs" and optionally
// "akchain", each of its CBOR type and within its bound; at most MaxBanks
// known banks, PCR indices 0 to 23, each value the digest size of its bank;
// at most MaxAKChain certificates. Duplicate keys, indefinite lengths, deep
// nesting and trailing bytes are rejected. The TPM structures inside are not
// decoded here: Verifier.Appraise does that.
func ParseQuote(b []byte) (*Quote, error) {
	if len(b) > evidence.MaxItemSize {
		return nil, fmt.Errorf("tpm quote: %d bytes, over the limit of %d", len(b), evidence.MaxItemSize)
	}
	if majorType(b) != cborMap {
		return nil, errors.New("tpm quote: not a CBOR map")
	}
	var fields map[string]cbor.RawMessage
	if err := quoteDec.Unmarshal(b, &fields); err != nil {
		return nil, fmt.Errorf("tpm quote: %w", err)
	}
	for k := range fields {
		switch k {
		case keyAK, keyQuoted, keySig, keyPCRs, keyAKChain:
		default:
			return nil, fmt.Errorf("tpm quote: unknown key %q", k)
		}
	}
	for _, k := range []string{keyAK, keyQuoted, keySig, keyPCRs} {
		if _, ok := fields[k]; !ok {
			return nil, fmt.Errorf("tpm quote: %q is missing", k)
		}
	}

	q := &Quote{}
	var err error
	if q.AK, err = decodeBstr(fields[keyAK], `"ak"`, maxAKSize); err != nil {
		return nil, err
	}
	if q.Quoted, err = decodeBstr(fields[keyQuoted], `"quoted"`, maxQuotedSize); err != nil {
		return nil, err
	}
	if q.Sig, err = decodeBstr(fields[keySig], `"sig"`, maxSigSize); err != nil {
		return nil, err
	}
	if q.PCRs, err = decodePCRs(fields[keyPCRs]); err != nil {
		return nil, err
	}
	if raw, ok := fields[keyAKChain]; ok {
		if q.AKChain, err = decodeAKChain(raw); err != nil {
			return nil, err
		}
	}
	if err := q.check(); err != nil {
		return nil, err
	}
	return q, nil
}

// check applies the bounds of the quote map to a Quote.
func (q *Quote) check() error {
	for _, f := range []struct {
		name string
		v    []byte
		max  int
	}{{keyAK, q.AK, maxAKSize}, {keyQuoted, q.Quoted, maxQuotedSize}, {keySig, q.Sig, maxSigSize}} {
		if len(f.v) == 0 {
			return fmt.Errorf("tpm quote: %q is empty", f.name)
		}
		if len(f.v) > f.max {
			return fmt.Errorf("tpm quote: %q is %d bytes, over the limit of %d", f.name, len(f.v), f.max)
		}
	}
	if len(q.PCRs) == 0 {
		return fmt.Errorf("tpm quote: %q holds no bank", keyPCRs)
	}
	if len(q.PCRs) > MaxBanks {
		return fmt.Errorf("tpm quote: %q holds %d banks, at most %d allowed", keyPCRs, len(q.PCRs), MaxBanks)
	}
	for b, vals := range q.PCRs {
		h, err := b.Hash()
		if err != nil {
			return fmt.Errorf("tpm quote: %q: %w", keyPCRs, err)
		}
		if len(vals) == 0 {
			return fmt.Errorf("tpm quote: %q: bank %s holds no PCR", keyPCRs, b)
		}
		for i, v := range vals {
			if i < 0 || i >= NumPCRs {
				return fmt.Errorf("tpm quote: %q: bank %s: PCR index %d is out of range 0-%d", keyPCRs, b, i, NumPCRs-1)
			}
			if len(v) != h.Size() {
				return fmt.Errorf("tpm quote: %q: PCR %s:%d is %d bytes, want %d", keyPCRs, b, i, len(v), h.Size())
			}
		}
	}
	if q.AKChain != nil && len(q.AKChain) == 0 {
		return fmt.Errorf("tpm quote: %q is present but empty", keyAKChain)
	}
	if len(q.AKChain) > MaxAKChain {
		return fmt.Errorf("tpm quote: %q holds %d certificates, at most %d allowed", keyAKChain, len(q.AKChain), MaxAKChain)
	}
	for i, c := range q.AKChain {
		if len(c) == 0 || len(c) > maxCertSize {
			return fmt.Errorf("tpm quote: %q[%d] is %d bytes, want 1 to %d", keyAKChain, i, len(c), maxCertSize)
		}
	}
	return nil
}

// decodePCRs decodes {uint => {uint => bstr}}.
func decodePCRs(raw cbor.RawMessage) (PCRValues, error) {
	if majorType(raw) != cborMap {
		return nil, fmt.Errorf("tpm quote: %q is not a map", keyPCRs)
	}
	var banks map[uint64]cbor.RawMessage
	if err := quoteDec.Unmarshal(raw, &banks); err != nil {
		return nil, fmt.Errorf("tpm quote: %q: bank: %w", keyPCRs, err)
	}
	if len(banks) > MaxBanks {
		return nil, fmt.Errorf("tpm quote: %q holds %d banks, at most %d allowed", keyPCRs, len(banks), MaxBanks)
	}
	out := make(PCRValues, len(banks))
	for _, alg := range slices.Sorted(maps.Keys(banks)) {
		if alg > 0xffff {
			return nil, fmt.Errorf("tpm quote: %q: bank %d is not a TPM algorithm ID", keyPCRs, alg)
		}
		b := Bank(alg)
		if _, err := b.Hash(); err != nil {
			return nil, fmt.Errorf("tpm quote: %q: %w", keyPCRs, err)
		}
		if majorType(banks[alg]) != cborMap {
			return nil, fmt.Errorf("tpm quote: %q: bank %s is not a map", keyPCRs, b)
		}
		var vals map[uint64]cbor.RawMessage
		if err := quoteDec.Unmarshal(banks[alg], &vals); err != nil {
			return nil, fmt.Errorf("tpm quote: %q: bank %s: %w", keyPCRs, b, err)
		}
		out[b] = make(map[int][]byte, len(vals))
		for i, v := range vals {
			if i >= NumPCRs {
				return nil, fmt.Errorf("tpm quote: %q: bank %s: PCR index %d is out of range 0-%d", keyPCRs, b, i, NumPCRs-1)
			}
			val, err := decodeBstr(v, fmt.Sprintf("%q: PCR %s:%d", keyPCRs, b, i), 64)
			if err != nil {
				return nil, err
			}
			out[b][int(i)] = val
		}
	}
	return out, nil
}

// decodeAKChain decodes [+ bstr].
func decodeAKChain(raw cbor.RawMessage) ([][]byte, error) {
	if majorType(raw) != cborArray {
		return nil, fmt.Errorf("tpm quote: %q is not an array", keyAKChain)
	}
	var certs []cbor.RawMessage
	if err := quoteDec.Unmarshal(raw, &certs); err != nil {
		return nil, fmt.Errorf("tpm quote: %q: %w", keyAKChain, err)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("tpm quote: %q is present but empty", keyAKChain)
	}
	if len(certs) > MaxAKChain {
		return nil, fmt.Errorf("tpm quote: %q holds %d certificates, at most %d allowed", keyAKChain, len(certs), MaxAKChain)
	}
	out := make([][]byte, len(certs))
	for i, c := range certs {
		var err error
		if out[i], err = decodeBstr(c, fmt.Sprintf("%q[%d]", keyAKChain, i), maxCertSize); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CBOR major types (RFC 8949 §3.1) that the quote map uses.
const (
	cborBstr  = 2
	cborArray = 4
	cborMap   = 5
)

// majorType returns the CBOR major type of the item raw starts with, or -1.
func majorType(raw []byte) int {
	if len(raw) == 0 {
		return -1
	}
	return int(raw[0] >> 5)
}

// decodeBstr decodes a byte string of at most max bytes, refusing the other
// CBOR types that the library would otherwise convert into a []byte. label
// names the field in errors.
func decodeBstr(raw cbor.RawMessage, label string, max int) ([]byte, error) {
	if majorType(raw) != cborBstr {
		return nil, fmt.Errorf("tpm quote: %s is not a byte string", label)
	}
	var v []byte
	if err := quoteDec.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("tpm quote: %s: %w", label, err)
	}
	if len(v) > max {
		return nil, fmt.Errorf("tpm quote: %s is %d bytes, over the limit of %d", label, len(v), max)
	}
	return v, nil
}
