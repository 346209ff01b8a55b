package inspect

import (
	"bytes"
	"cmp"
	"crypto"
	"fmt"
	"slices"
	"strings"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/fxamacker/cbor/v2"
)

// freshness is where platform evidence carries its caller-chosen value (D in
// this protocol), as decoding found it.
type freshness struct {
	// field names it: "REPORT_DATA", "REPORTDATA", "extraData (qualifyingData)".
	field string
	// value is its content; nil when the evidence could not be decoded.
	value []byte
	// why says why value is nil.
	why string
}

// bundle decodes a bundle (docs/protocol.md §4) with evidence.ParseBundle,
// its kc and its platform evidence, and checks that the platform evidence
// carries D = H(kc).
func (in *inspector) bundle(b []byte) (*Node, error) {
	bu, err := evidence.ParseBundle(b)
	if err != nil {
		return nil, err
	}
	n := &Node{Kind: KindBundle, Title: fmt.Sprintf("bundle (CMW collection of kc and platform evidence, CBOR, %d bytes)", len(b))}
	n.add("__cmwc_t", "__cmwc_t", evidence.CollectionType)

	kcNode, err := in.kc(bu.KC)
	if err != nil {
		kcNode = opaque("kc: not valid", bu.KC, err.Error())
	}
	n.add("kc", "kc", kcNode)

	plat, fresh := in.platform(bu.Platform)
	n.add("platform", "platform", plat)
	n.Fields = append(n.Fields, bindingField(bu, fresh))
	return n, nil
}

// bindingField states whether the platform evidence carries D = H(kc)
// (docs/protocol.md §3). It is a fact about the bytes, not an appraisal:
// nothing here says the evidence is genuine.
func bindingField(bu *evidence.Bundle, fresh freshness) Field {
	f := Field{Key: "binding", Label: "binding"}
	h, err := evidence.BindingHashFor(bu.Platform.MediaType)
	if err != nil {
		f.Value = Group{field("error", "error", err.Error())}
		f.Text = "not checked: " + err.Error()
		return f
	}
	d := evidence.Binding(h, bu.KC)
	g := Group{
		field("hash", "hash", hashName(h)),
		field("d", "D = "+hashName(h)+"(kc)", Hex(d)),
		field("carried_in", "carried in", fresh.field),
	}
	if fresh.value == nil {
		g = append(g, Field{Key: "matches", Label: "matches", Value: nil, Text: "not checked"}, field("reason", "because", fresh.why))
		f.Value, f.Note = g, "(not checked)"
		return f
	}
	ok := bytes.Equal(fresh.value, d)
	m := Field{Key: "matches", Label: "matches", Value: ok}
	if ok {
		m.Note = "(" + fresh.field + " = D: this platform evidence is over this kc)"
	} else {
		m.Note = "(MISMATCH: " + fresh.field + " is not D; this platform evidence is not over this kc)"
	}
	f.Value = append(g, m)
	return f
}

// hashName names a binding hash as the protocol does.
func hashName(h crypto.Hash) string {
	switch h {
	case crypto.SHA256:
		return "SHA-256"
	case crypto.SHA512:
		return "SHA-512"
	}
	return h.String()
}

// platform decodes platform evidence by its media type.
func (in *inspector) platform(ev evidence.Evidence) (*Node, freshness) {
	switch ev.MediaType {
	case evidence.MediaTypeTSMReport:
		n, fresh, err := in.tsmReport(ev.Data)
		if err != nil {
			return opaque("configfs-tsm report: not valid", ev.Data, err.Error()), freshness{field: "REPORT_DATA", why: "the report map is not valid"}
		}
		return n, fresh
	case evidence.MediaTypeTPMQuote:
		n, fresh, err := in.tpmQuote(ev.Data)
		if err != nil {
			return opaque("TPM quote: not valid", ev.Data, err.Error()), freshness{field: tpmFreshnessField, why: "the quote map is not valid"}
		}
		return n, fresh
	}
	n := opaque("platform evidence (not decoded here)", ev.Data, "")
	n.Fields = append([]Field{field("media_type", "media type", ev.MediaType)}, n.Fields...)
	return n,
		freshness{field: "(unknown)", why: "this media type is not decoded here"}
}

// Claim keys of the kc (docs/protocol.md §2), as evidence.ParseKC reads them.
const (
	kcClaimIAT    = 6
	kcClaimCnf    = 8
	kcClaimNonce  = 10
	kcClaimIntUse = 275
)

// kc decodes a key-confirmation claims set (docs/protocol.md §2) with
// evidence.ParseKC; claims it does not know are shown in CBOR diagnostic
// notation.
func (in *inspector) kc(b []byte) (*Node, error) {
	kc, err := evidence.ParseKC(b)
	if err != nil {
		return nil, err
	}
	n := &Node{Kind: KindKC, Title: fmt.Sprintf("key-confirmation claims set (kc: UCCS, CBOR tag 601, %d bytes)", len(b))}
	n.add("media_type", "media type", evidence.MediaTypeKC)
	n.add("eat_nonce", "eat_nonce (10)", Hex(kc.Nonce)).Note = "(N = SHA-256(keyAuthorization))"
	n.add("iat", "iat (6)", kc.IssuedAt).Note = fmt.Sprintf("(%d)", kc.IssuedAt.Unix())
	n.add("intuse", "intuse (275)", evidence.IntendedUseIssuance).Note = "(certificate issuance)"
	n.Fields = append(n.Fields, keyField("cnf", "cnf (8)", kc.Key))
	if extra := otherClaims(b); len(extra) > 0 {
		n.add("other_claims", "other claims", extra)
	}
	return n, nil
}

// otherClaims returns the claims of a (valid) kc that ParseKC does not
// interpret, in CBOR diagnostic notation, ordered by key.
func otherClaims(b []byte) Group {
	var tag cbor.RawTag
	if err := evidence.StrictDecMode(64).Unmarshal(b, &tag); err != nil {
		return nil
	}
	var claims map[any]cbor.RawMessage
	if err := evidence.StrictDecMode(64).Unmarshal(tag.Content, &claims); err != nil {
		return nil
	}
	type claim struct {
		key  string
		diag string
	}
	var out []claim
	for k, v := range claims {
		switch k {
		case int64(kcClaimIAT), int64(kcClaimCnf), int64(kcClaimNonce), int64(kcClaimIntUse),
			uint64(kcClaimIAT), uint64(kcClaimCnf), uint64(kcClaimNonce), uint64(kcClaimIntUse):
			continue
		}
		d, err := cbor.Diagnose(v)
		if err != nil {
			d = "(not diagnosable: " + err.Error() + ")"
		}
		out = append(out, claim{fmt.Sprint(k), d})
	}
	slices.SortFunc(out, func(a, b claim) int {
		return cmp.Or(cmp.Compare(len(a.key), len(b.key)), strings.Compare(a.key, b.key))
	})
	g := make(Group, len(out))
	for i, c := range out {
		g[i] = field(c.key, c.key, c.diag)
	}
	return g
}
