package tpm

import (
	"bytes"
	"testing"

	"github.com/attest-acme/attest-acme/evidence"
)

// sampleQuote is a well-formed quote map with placeholder TPM structures:
// ParseQuote checks the map, not what is inside the byte strings.
func sampleQuote() *Quote {
	return &Quote{
		AK:     []byte("TPMT_PUBLIC"),
		Quoted: []byte("TPMS_ATTEST"),
		Sig:    []byte("TPMT_SIGNATURE"),
		PCRs: PCRValues{
			BankSHA256: {0: bytes.Repeat([]byte{1}, 32), 7: bytes.Repeat([]byte{7}, 32)},
			BankSHA1:   {0: bytes.Repeat([]byte{2}, 20)},
		},
		AKChain: [][]byte{[]byte("leaf"), []byte("root")},
	}
}

// sampleMap is sampleQuote as a generic map, for tests to break.
func sampleMap() map[string]any {
	return map[string]any{
		"ak":     []byte("TPMT_PUBLIC"),
		"quoted": []byte("TPMS_ATTEST"),
		"sig":    []byte("TPMT_SIGNATURE"),
		"pcrs": map[any]any{
			uint64(BankSHA256): map[any]any{uint64(0): bytes.Repeat([]byte{1}, 32)},
		},
	}
}

// encode encodes v with the deterministic encoder.
func encode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := evidence.DetEncMode().Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cborPairs encodes a map header for n pairs followed by the pairs as given,
// in order, repeats included.
func cborPairs(t testing.TB, kv ...any) []byte {
	t.Helper()
	out := []byte{0xa0 | byte(len(kv)/2)}
	for _, x := range kv {
		out = append(out, encode(t, x)...)
	}
	return out
}

func TestQuoteRoundTrip(t *testing.T) {
	q := sampleQuote()
	b, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseQuote(b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := got.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, again) {
		t.Fatal("decoding and encoding again changed the bytes")
	}
	if !bytes.Equal(got.PCRs[BankSHA1][0], q.PCRs[BankSHA1][0]) || len(got.AKChain) != 2 {
		t.Fatalf("round trip changed the quote: %+v", got)
	}
	// Core deterministic encoding orders keys by length, then bytes.
	var generic map[string]any
	if err := quoteDec.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encode(t, generic), b) {
		t.Fatal("Marshal is not the core deterministic encoding")
	}
	if i, j := bytes.Index(b, []byte("\x62ak")), bytes.Index(b, []byte("\x67akchain")); i < 0 || j < i {
		t.Fatal(`"ak" is not encoded before "akchain"`)
	}
}

func TestParseQuoteRejects(t *testing.T) {
	valid := encode(t, sampleMap())
	if _, err := ParseQuote(valid); err != nil {
		t.Fatalf("the sample does not parse: %v", err)
	}
	with := func(change func(m map[string]any)) []byte {
		m := sampleMap()
		change(m)
		return encode(t, m)
	}
	pcr := func(bank, index, value any) []byte {
		return with(func(m map[string]any) { m["pcrs"] = map[any]any{bank: map[any]any{index: value}} })
	}
	nested := any([]byte("deep"))
	for range 12 {
		nested = []any{nested}
	}
	certs := func(n int) [][]byte {
		c := make([][]byte, n)
		for i := range c {
			c[i] = []byte("cert")
		}
		return c
	}
	fiveBanks := map[any]any{}
	for b := range uint64(5) {
		fiveBanks[uint64(BankSHA256)+b] = map[any]any{uint64(0): make([]byte, 32)}
	}

	for _, tc := range []struct {
		name string
		in   []byte
		want []string
	}{
		{"empty input", nil, []string{"not a CBOR map"}},
		{"truncated map", valid[:len(valid)-5], []string{"unexpected EOF"}},
		{"trailing bytes", append(bytes.Clone(valid), 0x00), []string{"extraneous data"}},
		{"over the size limit", cborPairs(t, "ak", make([]byte, evidence.MaxItemSize)), []string{"over the limit of 32768"}},
		{"oversized ak", with(func(m map[string]any) { m["ak"] = make([]byte, maxAKSize+1) }), []string{`"ak" is 1025 bytes, over the limit of 1024`}},
		{"oversized quoted", with(func(m map[string]any) { m["quoted"] = make([]byte, 2000) }), []string{`"quoted" is 2000 bytes`}},
		{"oversized certificate", with(func(m map[string]any) { m["akchain"] = [][]byte{make([]byte, maxCertSize+1)} }), []string{`"akchain"[0] is 8193 bytes`}},
		{"duplicate key", cborPairs(t, "ak", []byte("a"), "quoted", []byte("q"), "sig", []byte("s"),
			"pcrs", map[any]any{uint64(BankSHA256): map[any]any{uint64(0): make([]byte, 32)}}, "ak", []byte("b")), []string{"duplicate map key"}},
		{"duplicate PCR index", cborPairs(t, "ak", []byte("a"), "quoted", []byte("q"), "sig", []byte("s"),
			"pcrs", cborRaw(cborPairs(t, uint64(BankSHA256), cborRaw(cborPairs(t, 0, make([]byte, 32), 0, make([]byte, 32)))))), []string{`"pcrs": bank sha256:`, "duplicate map key"}},
		{"indefinite-length map", append(append([]byte{0xbf}, valid[1:]...), 0xff), []string{"indefinite-length"}},
		{"deeply nested", with(func(m map[string]any) { m["akchain"] = nested }), []string{"exceeded max nested level"}},
		{"array, not a map", encode(t, []any{[]byte("ak")}), []string{"not a CBOR map"}},
		{"tagged map", append([]byte{0xd8, 0x18}, valid...), []string{"not a CBOR map"}},
		{"unknown key", with(func(m map[string]any) { m["extra"] = 1 }), []string{`unknown key "extra"`}},
		{"missing sig", with(func(m map[string]any) { delete(m, "sig") }), []string{`"sig" is missing`}},
		{"empty ak", with(func(m map[string]any) { m["ak"] = []byte{} }), []string{`"ak" is empty`}},
		{"ak is text", with(func(m map[string]any) { m["ak"] = "TPMT_PUBLIC" }), []string{`"ak" is not a byte string`}},
		{"ak is an array of bytes", with(func(m map[string]any) { m["ak"] = []any{1, 2, 3} }), []string{`"ak" is not a byte string`}},
		{"sig is an integer", with(func(m map[string]any) { m["sig"] = 7 }), []string{`"sig" is not a byte string`}},
		{"pcrs is an array", with(func(m map[string]any) { m["pcrs"] = []any{1} }), []string{`"pcrs" is not a map`}},
		{"pcrs is empty", with(func(m map[string]any) { m["pcrs"] = map[any]any{} }), []string{`"pcrs" holds no bank`}},
		{"bank key is text", pcr("sha256", uint64(0), make([]byte, 32)), []string{`"pcrs": bank:`, "cannot unmarshal"}},
		{"bank key is negative", pcr(int64(-11), uint64(0), make([]byte, 32)), []string{`"pcrs": bank:`, "cannot unmarshal"}},
		{"bank is not a map", with(func(m map[string]any) { m["pcrs"] = map[any]any{uint64(BankSHA256): []byte("x")} }), []string{"bank sha256 is not a map"}},
		{"bank is empty", with(func(m map[string]any) { m["pcrs"] = map[any]any{uint64(BankSHA256): map[any]any{}} }), []string{"bank sha256 holds no PCR"}},
		{"unknown bank", pcr(uint64(0x0010), uint64(0), make([]byte, 32)), []string{"PCR bank alg 0x0010 is not supported"}},
		{"bank beyond 16 bits", pcr(uint64(0x1000b), uint64(0), make([]byte, 32)), []string{"not a TPM algorithm ID"}},
		{"too many banks", with(func(m map[string]any) { m["pcrs"] = fiveBanks }), []string{"holds 5 banks, at most 4"}},
		{"PCR index is text", pcr(uint64(BankSHA256), "0", make([]byte, 32)), []string{`"pcrs": bank sha256:`, "cannot unmarshal"}},
		{"PCR index 24", pcr(uint64(BankSHA256), uint64(24), make([]byte, 32)), []string{"PCR index 24 is out of range 0-23"}},
		{"PCR value is an integer", pcr(uint64(BankSHA256), uint64(0), 5), []string{`"pcrs": PCR sha256:0 is not a byte string`}},
		{"PCR value too short", pcr(uint64(BankSHA256), uint64(3), make([]byte, 31)), []string{"PCR sha256:3 is 31 bytes, want 32"}},
		{"SHA-1 PCR of SHA-256 size", pcr(uint64(BankSHA1), uint64(0), make([]byte, 32)), []string{"PCR sha1:0 is 32 bytes, want 20"}},
		{"akchain is a byte string", with(func(m map[string]any) { m["akchain"] = []byte("cert") }), []string{`"akchain" is not an array`}},
		{"akchain is empty", with(func(m map[string]any) { m["akchain"] = []any{} }), []string{`"akchain" is present but empty`}},
		{"akchain holds text", with(func(m map[string]any) { m["akchain"] = []any{"cert"} }), []string{`"akchain"[0] is not a byte string`}},
		{"akchain too long", with(func(m map[string]any) { m["akchain"] = certs(MaxAKChain + 1) }), []string{"holds 5 certificates, at most 4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseQuote(tc.in)
			wantErr(t, err, append([]string{"tpm quote:"}, tc.want...)...)
		})
	}
}

func TestQuoteMarshalRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(q *Quote)
		want   string
	}{
		{"empty sig", func(q *Quote) { q.Sig = nil }, `"sig" is empty`},
		{"wrong PCR size", func(q *Quote) { q.PCRs[BankSHA256][0] = []byte{1} }, "PCR sha256:0 is 1 bytes, want 32"},
		{"PCR index out of range", func(q *Quote) { q.PCRs[BankSHA256][-1] = make([]byte, 32) }, "PCR index -1 is out of range"},
		{"too many certificates", func(q *Quote) { q.AKChain = make([][]byte, 5) }, "holds 5 certificates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := sampleQuote()
			tc.change(q)
			_, err := q.Marshal()
			wantErr(t, err, tc.want)
		})
	}
}

// cborRaw marks bytes as already encoded CBOR.
type cborRaw []byte

// MarshalCBOR returns the bytes as they are.
func (r cborRaw) MarshalCBOR() ([]byte, error) { return r, nil }
