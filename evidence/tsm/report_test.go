package tsm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/fxamacker/cbor/v2"
)

// cborMap writes a CBOR map header for len(kv)/2 pairs followed by each key
// and value as encoded by the CBOR library, so tests can build maps the
// library would refuse to produce (duplicate keys).
func cborMap(t testing.TB, kv ...any) []byte {
	t.Helper()
	head, err := cbor.Marshal(make(map[int]int, 0))
	if err != nil {
		t.Fatal(err)
	}
	n := len(kv) / 2
	if n > 23 {
		t.Fatal("cborMap: too many pairs")
	}
	out := []byte{head[0] | byte(n)}
	for _, x := range kv {
		if raw, ok := x.(cbor.RawMessage); ok {
			out = append(out, raw...)
			continue
		}
		b, err := cbor.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func TestReportRoundTrip(t *testing.T) {
	for _, r := range []*Report{
		{Provider: ProviderSNP, OutBlob: []byte("report"), AuxBlob: []byte("certs")},
		{Provider: ProviderTDX, OutBlob: []byte("quote")},
		{Provider: ProviderCCA, OutBlob: []byte("token")},
	} {
		t.Run(r.Provider, func(t *testing.T) {
			b, err := r.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseReport(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.Provider != r.Provider || !bytes.Equal(got.OutBlob, r.OutBlob) || !bytes.Equal(got.AuxBlob, r.AuxBlob) {
				t.Fatalf("round trip changed the report: %+v, want %+v", got, r)
			}
			again, err := got.Marshal()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encoding is not byte-identical: %x, want %x (%v)", again, b, err)
			}
		})
	}
}

func TestReportEncodingIsDeterministic(t *testing.T) {
	b, err := (&Report{Provider: ProviderSNP, OutBlob: []byte{1}, AuxBlob: []byte{2}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// RFC 8949 §4.2.1: keys sorted by their encoding, so shorter keys first.
	want := cborMap(t, "auxblob", []byte{2}, "outblob", []byte{1}, "provider", ProviderSNP)
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding is %x, want %x", b, want)
	}
}

func TestReportMarshalRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		r       Report
		wantErr string
	}{
		{"unknown provider", Report{Provider: "fake", OutBlob: []byte{1}}, `provider "fake" is not one of`},
		{"empty outblob", Report{Provider: ProviderSNP}, "outblob is empty"},
		{"oversized outblob", Report{Provider: ProviderSNP, OutBlob: make([]byte, evidence.MaxItemSize+1)}, "outblob is 32769 bytes, over the limit"},
		{"oversized map", Report{Provider: ProviderSNP, OutBlob: make([]byte, evidence.MaxItemSize-10), AuxBlob: make([]byte, 100)}, "over the limit of 32768"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.r.Marshal()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Marshal() error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseReportRejects(t *testing.T) {
	valid := cborMap(t, "provider", ProviderSNP, "outblob", []byte("report"))
	nested := bytes.Repeat([]byte{0x81}, 20) // twenty nested one-element arrays
	nested = append(nested, 0x00)
	tag24, _ := cbor.Marshal(cbor.Tag{Number: 24, Content: []byte("x")})
	for _, tc := range []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"empty input", nil, "malformed CBOR: EOF"},
		{"truncated", valid[:len(valid)-1], "unexpected EOF"},
		{"oversized", cborMap(t, "provider", ProviderSNP, "outblob", make([]byte, evidence.MaxItemSize)), "over the limit of 32768"},
		{"duplicate key", cborMap(t, "provider", ProviderSNP, "outblob", []byte("a"), "provider", ProviderTDX), "duplicate map key"},
		{"deeply nested", cborMap(t, "provider", ProviderSNP, "outblob", []byte("a"), "auxblob", cbor.RawMessage(nested)), "exceeded max nested level"},
		{"trailing bytes", append(bytes.Clone(valid), 0x00), "extraneous data"},
		{"indefinite-length map", append(append([]byte{0xbf}, valid[1:]...), 0xff), "indefinite-length map isn't allowed"},
		{"array, not a map", []byte{0x82, 0x01, 0x02}, "not a map with text keys"},
		{"integer keys", cborMap(t, 1, ProviderSNP, 2, []byte("a")), "not a map with text keys"},
		{"unknown key", cborMap(t, "provider", ProviderSNP, "outblob", []byte("a"), "inblob", []byte("b")), `key "inblob" is not allowed`},
		{"missing provider", cborMap(t, "outblob", []byte("a")), "provider is missing"},
		{"missing outblob", cborMap(t, "provider", ProviderSNP), "outblob is missing"},
		{"provider not text", cborMap(t, "provider", []byte(ProviderSNP), "outblob", []byte("a")), "provider is a byte string, want a text string"},
		{"outblob as text", cborMap(t, "provider", ProviderSNP, "outblob", "report"), "outblob is a text string, want a byte string"},
		{"outblob as an array of bytes", cborMap(t, "provider", ProviderSNP, "outblob", []int{1, 2, 3}), "outblob is an array, want a byte string"},
		{"outblob tagged", cborMap(t, "provider", ProviderSNP, "outblob", cbor.RawMessage(tag24)), "outblob is a tagged item, want a byte string"},
		{"auxblob as integer", cborMap(t, "provider", ProviderSNP, "outblob", []byte("a"), "auxblob", 7), "auxblob is an unsigned integer, want a byte string"},
		{"empty outblob", cborMap(t, "provider", ProviderSNP, "outblob", []byte{}), "outblob is empty"},
		{"unknown provider", cborMap(t, "provider", "sgx_guest", "outblob", []byte("a")), `provider "sgx_guest" is not one of tdx_guest, sev_guest, arm_cca_guest`},
		{"provider with newline", cborMap(t, "provider", ProviderSNP+"\n", "outblob", []byte("a")), `provider "sev_guest\n" is not one of`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseReport(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseReport() = %+v, %v; want an error containing %q", r, err, tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "tsm report: ") {
				t.Errorf("error %q does not say it is about the tsm report", err)
			}
		})
	}
}

func TestParseReportAcceptsEmptyAuxBlobAsAbsent(t *testing.T) {
	r, err := ParseReport(cborMap(t, "provider", ProviderSNP, "outblob", []byte("a"), "auxblob", []byte{}))
	if err != nil {
		t.Fatal(err)
	}
	if r.AuxBlob != nil {
		t.Fatalf("auxblob = %x, want nil", r.AuxBlob)
	}
}
