package tsm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/testing/testdata"
	"github.com/google/go-tdx-guest/verify"
)

// tdxNow is inside the test chain's validity (2025 to 2075).
var tdxNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// Offsets into a version 4 quote (Intel TDX DCAP quote format).
const (
	offTEEType    = 4
	offMRTD       = 0x30 + 0x88
	offSignedSize = 0x278
	offAK         = 0x27C + 0x40
	offQEReport   = 0x27C + 0x80 + 6
	offQEMRENCL   = offQEReport + 0x40
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// testTDXVerifier trusts the committed test root.
func testTDXVerifier(t testing.TB) *tsm.TDXVerifier {
	t.Helper()
	return tdxVerifierAt(t, tdxNow)
}

func tdxVerifierAt(t testing.TB, now time.Time) *tsm.TDXVerifier {
	t.Helper()
	root, err := sim.TDXTestRoot()
	if err != nil {
		t.Fatal(err)
	}
	v, err := tsm.NewTDXVerifier(tsm.TDXOptions{Roots: []*x509.Certificate{root}, Now: fixedClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// bindingD makes a kc for a fresh key and returns D = SHA-512(kc).
func bindingD(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nonce := sha256.Sum256([]byte("token.thumbprint"))
	kc, err := evidence.NewKC(key.Public(), nonce[:], tdxNow)
	if err != nil {
		t.Fatal(err)
	}
	return evidence.Binding(crypto.SHA512, kc)
}

func newTD(t testing.TB, opts sim.TDXOptions) *sim.TDX {
	t.Helper()
	td, err := sim.NewTDX(opts)
	if err != nil {
		t.Fatal(err)
	}
	return td
}

func quote(t testing.TB, td *sim.TDX, d []byte) []byte {
	t.Helper()
	q, err := td.Quote(d)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func measurement(label string) []byte {
	h := sha512.Sum384([]byte(label))
	return h[:]
}

func TestTDXAppraiseRoundTrip(t *testing.T) {
	opts := sim.TDXOptions{
		MRTD:         measurement("mrtd"),
		RTMR:         [4][]byte{measurement("rtmr0"), measurement("rtmr1"), measurement("rtmr2"), measurement("rtmr3")},
		TDAttributes: sim.TDXAttrSEPTVEDisable,
	}
	td := newTD(t, opts)
	d := bindingD(t)

	// The way a client does it: the TD's evidence.Attester, the report map.
	if td.BindingHash() != crypto.SHA512 {
		t.Fatalf("binding hash is %v, want SHA-512", td.BindingHash())
	}
	ev, err := td.Attest(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if ev.MediaType != evidence.MediaTypeTSMReport {
		t.Fatalf("media type %q, want %q", ev.MediaType, evidence.MediaTypeTSMReport)
	}
	r, err := tsm.ParseReport(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Provider != tsm.ProviderTDX {
		t.Fatalf("provider %q, want %q", r.Provider, tsm.ProviderTDX)
	}

	// The way the verifier does it: the tsm dispatcher over the report map.
	all, err := tsm.NewVerifier(tsm.Options{TDX: testTDXVerifier(t)}).Appraise(ev.Data, d)
	if err != nil {
		t.Fatal(err)
	}
	if all.Provider != tsm.ProviderTDX || all.TDX == nil || all.SNP != nil {
		t.Fatalf("dispatcher claims: %+v", all)
	}
	c := all.TDX
	check := []struct {
		name      string
		got, want []byte
	}{
		{"MRTD", c.MRTD, opts.MRTD},
		{"RTMR0", c.RTMR[0], opts.RTMR[0]},
		{"RTMR1", c.RTMR[1], opts.RTMR[1]},
		{"RTMR2", c.RTMR[2], opts.RTMR[2]},
		{"RTMR3", c.RTMR[3], opts.RTMR[3]},
		{"ReportData", c.ReportData, d},
		{"TDAttributes", c.TDAttributes, binary.LittleEndian.AppendUint64(nil, sim.TDXAttrSEPTVEDisable)},
		{"FMSPC", c.FMSPC, []byte{0x50, 0x80, 0x6f, 0, 0, 0}},
		{"QEVendorID", c.QEVendorID, mustHex(t, "939a7233f79c4ca9940a0db3957f0607")},
	}
	for _, ck := range check {
		if !bytes.Equal(ck.got, ck.want) {
			t.Errorf("%s is %x, want %x", ck.name, ck.got, ck.want)
		}
	}
	sizes := map[string][]byte{"MRSEAM": c.MRSEAM, "MRConfigID": c.MRConfigID, "MROwner": c.MROwner, "MROwnerConfig": c.MROwnerConfig}
	for name, b := range sizes {
		if len(b) != 48 {
			t.Errorf("%s is %d bytes, want 48", name, len(b))
		}
	}
	if len(c.XFAM) != 8 || len(c.TEETCBSVN) != 16 {
		t.Errorf("XFAM is %d bytes, TEETCBSVN %d; want 8 and 16", len(c.XFAM), len(c.TEETCBSVN))
	}
	if c.Debug {
		t.Error("a TD without TD_ATTRIBUTES.DEBUG is reported as Debug")
	}
	if c.Version != 4 {
		t.Errorf("version %d, want 4", c.Version)
	}
	if len(c.QEMRSigner) != 32 || c.QEISVProdID != 2 || c.QEISVSVN != 4 {
		t.Errorf("QE MRSIGNER %x, ISVPRODID %d, ISVSVN %d; want 32 bytes, 2 and 4 (the simulated TD QE)", c.QEMRSigner, c.QEISVProdID, c.QEISVSVN)
	}
}

func TestTDXAppraiseReportsDebugTD(t *testing.T) {
	td := newTD(t, sim.TDXOptions{Debug: true, TDAttributes: sim.TDXAttrSEPTVEDisable})
	d := bindingD(t)
	c, err := testTDXVerifier(t).Appraise(quote(t, td, d), d)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Debug {
		t.Fatal("a debug TD is reported with Debug=false")
	}
	if c.TDAttributes[0]&1 != 1 {
		t.Fatalf("TD_ATTRIBUTES %x lack bit 0", c.TDAttributes)
	}
}

func TestTDXAppraiseRejects(t *testing.T) {
	d := bindingD(t)
	td := newTD(t, sim.TDXOptions{})
	good := quote(t, td, d)
	v := testTDXVerifier(t)
	edit := func(f func(q []byte) []byte) []byte { return f(bytes.Clone(good)) }

	freshPKI, err := sim.NewTDXPKI()
	if err != nil {
		t.Fatal(err)
	}
	intel, err := tsm.NewTDXVerifier(tsm.TDXOptions{Now: fixedClock(tdxNow)})
	if err != nil {
		t.Fatal(err)
	}
	late := tdxVerifierAt(t, time.Date(2080, 1, 1, 0, 0, 0, 0, time.UTC))
	early := tdxVerifierAt(t, time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC))

	tests := []struct {
		name    string
		v       *tsm.TDXVerifier
		quote   []byte
		d       []byte
		want    string
		wantErr error
	}{
		{name: "REPORTDATA is not D", quote: good, d: bindingD(t),
			want: "tdx: REPORTDATA is " + hex.EncodeToString(d)},
		{name: "D is not 64 bytes", quote: good, d: d[:32], want: "tdx: D is 32 bytes, want 64"},
		{name: "quote body tampered", quote: edit(func(q []byte) []byte { q[offMRTD] ^= 1; return q }), d: d,
			want: "unable to verify message digest using quote's signature", wantErr: verify.ErrHashVerificationFail},
		{name: "QE report tampered", quote: edit(func(q []byte) []byte { q[offQEMRENCL] ^= 1; return q }), d: d,
			want: "QE report's signature verification using PCK Leaf Certificate failed"},
		{name: "attestation key not the one the QE report names", quote: resignWithOtherAK(t, good), d: d,
			want: "QE Report Data does not match with value of SHA 256"},
		{name: "PCK chain to an untrusted root", quote: quote(t, newTD(t, sim.TDXOptions{PKI: freshPKI}), d), d: d,
			want: "certificate signed by unknown authority"},
		{name: "default Intel root rejects the test chain", v: intel, quote: good, d: d,
			want: "certificate signed by unknown authority"},
		{name: "PCK chain expired", v: late, quote: good, d: d,
			want: "certificate has expired or is not yet valid: current time 2080-01-01T00:00:00Z is after"},
		{name: "PCK chain not yet valid", v: early, quote: good, d: d,
			want: "certificate has expired or is not yet valid: current time 2024-12-31T00:00:00Z is before"},
		{name: "truncated below the smallest quote", quote: good[:600], d: d,
			want: "tdx: quote is 600 bytes, shorter than the smallest TDX quote (1020)"},
		{name: "truncated inside the PCK chain", quote: good[:len(good)-100], d: d,
			want: "tdx: malformed quote"},
		{name: "quote version 5", quote: edit(func(q []byte) []byte { q[0] = 5; return q }), d: d,
			want: "tdx: quote version 5 is not supported (want 4)"},
		{name: "quote version 3", quote: edit(func(q []byte) []byte { q[0] = 3; return q }), d: d,
			want: "tdx: quote version 3 is not supported (want 4)"},
		{name: "SGX TEE type", quote: edit(func(q []byte) []byte { q[offTEEType] = 0; return q }), d: d,
			want: "tdx: quote TEE type 0x0 is not TDX (0x81)"},
		{name: "attestation key type 3", quote: edit(func(q []byte) []byte { q[2] = 3; return q }), d: d,
			want: "tdx: attestation key type 3 is not supported"},
		{name: "bytes after the signed data", quote: append(bytes.Clone(good), 0), d: d,
			want: "tdx: quote has 1 bytes after its signed data"},
		{name: "signed data size zero (a go-tdx-guest panic)", quote: edit(func(q []byte) []byte {
			binary.LittleEndian.PutUint32(q[offSignedSize:], 0)
			return q
		}), d: d, want: "tdx: malformed quote (go-tdx-guest abi: runtime error"},
		{name: "over the size limit", quote: make([]byte, tsm.MaxTDXQuoteSize+1), d: d,
			want: "over the limit of 32768"},
		{name: "TD attribute bit the TDX module fixes to zero", quote: quote(t, newTD(t, sim.TDXOptions{TDAttributes: 1 << 5}), d), d: d,
			want: "tdx: TD attributes or XFAM: unauthorized tdAttributes 0x20"},
		{name: "verifier not made by NewTDXVerifier", v: &tsm.TDXVerifier{}, quote: good, d: d,
			want: "tdx: verifier is not set up"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vv := v
			if tc.v != nil {
				vv = tc.v
			}
			c, err := vv.Appraise(tc.quote, tc.d)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %q is not %v", err, tc.wantErr)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// resignWithOtherAK replaces the quote's attestation key with a fresh one
// and signs the header and body with it: a valid quote signature under a key
// the PCK-signed QE report does not vouch for.
func resignWithOtherAK(t *testing.T, good []byte) []byte {
	t.Helper()
	p, err := abi.QuoteToProto(good)
	if err != nil {
		t.Fatal(err)
	}
	q := p.(*pb.QuoteV4)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := abi.HeaderToAbiBytes(q.GetHeader())
	if err != nil {
		t.Fatal(err)
	}
	body, err := abi.TdQuoteBodyToAbiBytes(q.GetTdQuoteBody())
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(append(hdr, body...))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	q.SignedData.Signature = sig
	q.SignedData.EcdsaAttestationKey = pub[1:]
	out, err := abi.QuoteToAbiBytes(q)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(out[offAK:offAK+64], good[offAK:offAK+64]) {
		t.Fatal("attestation key was not replaced")
	}
	return out
}

// The root a TDXVerifier trusts by default is the root of the Intel-signed
// sample quote go-tdx-guest ships (its verify/trusted_root.pem), and that
// quote passes the offline appraisal under it.
func TestTDXDefaultRootIsIntels(t *testing.T) {
	p, err := abi.QuoteToProto(testdata.RawQuote)
	if err != nil {
		t.Fatal(err)
	}
	q := p.(*pb.QuoteV4)
	chain, err := verify.ExtractChainFromQuote(q)
	if err != nil {
		t.Fatal(err)
	}
	intel, err := tsm.IntelSGXRootCA()
	if err != nil {
		t.Fatal(err)
	}
	if !intel.Equal(chain.RootCertificate) {
		t.Fatalf("embedded root %s is not the root of go-tdx-guest's sample quote (%s)", intel.Subject, chain.RootCertificate.Subject)
	}

	// The sample file carries 39 bytes after the signed data; Appraise
	// refuses those, so cut them off.
	signed := 0x27C + int(q.GetSignedDataSize())
	sample := testdata.RawQuote[:signed]
	pckValid := chain.PCKCertificate.NotBefore.Add(24 * time.Hour)
	v, err := tsm.NewTDXVerifier(tsm.TDXOptions{Now: fixedClock(pckValid)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Appraise(sample, q.GetTdQuoteBody().GetReportData())
	if err != nil {
		t.Fatalf("Intel's sample quote: %v", err)
	}
	if !bytes.Equal(c.MRTD, q.GetTdQuoteBody().GetMrTd()) || hex.EncodeToString(c.FMSPC) != "50806f000000" {
		t.Fatalf("claims of the sample quote: MRTD %x, FMSPC %x", c.MRTD, c.FMSPC)
	}
	// Intel's QE signing key hash and the TD QE's product ID.
	if hex.EncodeToString(c.QEMRSigner) != "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5" || c.QEISVProdID != 2 {
		t.Fatalf("QE of the sample quote: MRSIGNER %x, ISVPRODID %d", c.QEMRSigner, c.QEISVProdID)
	}
	if _, err := v.Appraise(testdata.RawQuote, q.GetTdQuoteBody().GetReportData()); err == nil || !strings.Contains(err.Error(), "39 bytes after its signed data") {
		t.Fatalf("sample quote with trailing bytes: got %v", err)
	}
}

func TestParseTDXRoots(t *testing.T) {
	pemRoot, err := sim.TDXTestRootPEM()
	if err != nil {
		t.Fatal(err)
	}
	roots, err := tsm.ParseTDXRoots(pemRoot)
	if err != nil {
		t.Fatal(err)
	}
	want, err := sim.TDXTestRoot()
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || !roots[0].Equal(want) {
		t.Fatalf("ParseTDXRoots(TDXTestRootPEM) = %d roots, want the test root", len(roots))
	}
	// A verifier built from the PEM (a policy file) accepts the test quote.
	v, err := tsm.NewTDXVerifier(tsm.TDXOptions{Roots: roots, Now: fixedClock(tdxNow)})
	if err != nil {
		t.Fatal(err)
	}
	d := bindingD(t)
	if _, err := v.Appraise(quote(t, newTD(t, sim.TDXOptions{}), d), d); err != nil {
		t.Fatal(err)
	}

	pck := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: extractPCK(t, quote(t, newTD(t, sim.TDXOptions{}), d)).Raw})
	for name, tc := range map[string]struct{ in, want string }{
		"empty":            {"", "no root certificate"},
		"not PEM":          {"hello", "not PEM"},
		"a private key":    {"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", `PEM block "PRIVATE KEY"`},
		"a leaf":           {string(pck), "is not a CA certificate"},
		"trailing garbage": {string(pemRoot) + "x", "root 1: not PEM"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tsm.ParseTDXRoots([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one that says %q", err, tc.want)
			}
		})
	}
}

func extractPCK(t *testing.T, q []byte) *x509.Certificate {
	t.Helper()
	p, err := abi.QuoteToProto(q)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := verify.ExtractChainFromQuote(p)
	if err != nil {
		t.Fatal(err)
	}
	return chain.PCKCertificate
}

func TestNewTDXVerifierRejects(t *testing.T) {
	leaf := &x509.Certificate{IsCA: false}
	for name, roots := range map[string][]*x509.Certificate{
		"nil root":  {nil},
		"a non-CA ": {leaf},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := tsm.NewTDXVerifier(tsm.TDXOptions{Roots: roots}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func BenchmarkTDXAppraise(b *testing.B) {
	d := bindingD(b)
	q := quote(b, newTD(b, sim.TDXOptions{}), d)
	v := testTDXVerifier(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Appraise(q, d); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzTDXAppraise feeds arbitrary quotes to Appraise: it must never panic,
// and whatever it accepts must carry D.
func FuzzTDXAppraise(f *testing.F) {
	d := make([]byte, 64)
	for i := range d {
		d[i] = byte(i)
	}
	good := quote(f, newTD(f, sim.TDXOptions{Debug: true}), d)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:abi.QuoteMinSize])
	zero := bytes.Clone(good)
	binary.LittleEndian.PutUint32(zero[offSignedSize:], 0)
	f.Add(zero)
	v := testTDXVerifier(f)
	f.Fuzz(func(t *testing.T, q []byte) {
		c, err := v.Appraise(q, d)
		if err != nil {
			return
		}
		if !bytes.Equal(c.ReportData, d) {
			t.Fatalf("accepted a quote whose REPORTDATA %x is not D", c.ReportData)
		}
	})
}
