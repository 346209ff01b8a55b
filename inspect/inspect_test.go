package inspect_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/attest-acme/attest-acme/inspect"
	"github.com/fxamacker/cbor/v2"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/veraison/cmw"
)

func spkiSHA256(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(der)
	return s[:]
}

func goldenHex(t testing.TB, name string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.TrimSpace(string(golden(t, name))))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The golden payload is shown nested down to the kc and the platform
// evidence, with D computed from the kc bytes.
func TestInspectPayload(t *testing.T) {
	res := run(t, golden(t, "payload.json"), inspect.Options{})
	if res.Encoding != inspect.EncodingText || res.Root.Kind != inspect.KindPayload {
		t.Fatalf("read as %s, recognised as %s; want text, payload", res.Encoding, res.Root.Kind)
	}
	bundle := node(t, res.Root, inspect.KindBundle, "attObj", "attStmt", "cmw")
	if got, want := hexAt(t, bundle, "kc", "eat_nonce"), goldenHex(t, "nonce.hex"); !bytes.Equal(got, want) {
		t.Errorf("kc eat_nonce %x, want the golden N %x", got, want)
	}
	if got, want := hexAt(t, bundle, "binding", "d"), goldenHex(t, "d-sha512.hex"); !bytes.Equal(got, want) {
		t.Errorf("binding D %x, want the golden D %x", got, want)
	}
	// The golden platform evidence is a placeholder outblob: shown, with
	// why it is not a SEV-SNP report, and the binding left unchecked.
	out := node(t, bundle, inspect.KindOpaque, "platform", "outblob")
	if e := find(t, out, "error").(string); !strings.Contains(e, "14 bytes, want 1184") {
		t.Errorf("outblob error %q", e)
	}
	if m := find(t, bundle, "binding", "matches"); m != nil {
		t.Errorf("binding matches = %v for an outblob that does not parse, want unknown", m)
	}
	wantText(t, res, "device-attest-01 challenge payload", "attObj", "cmw", "eat_nonce (10)", "provider    sev_guest", "not checked")
}

func TestInspectAttestationObject(t *testing.T) {
	res := run(t, golden(t, "attobj.cbor"), inspect.Options{})
	if res.Encoding != inspect.EncodingBinary || res.Root.Kind != inspect.KindAttObj {
		t.Fatalf("read as %s, recognised as %s; want binary, attestation-object", res.Encoding, res.Root.Kind)
	}
	if f := find(t, res.Root, "fmt"); f != "cmw" {
		t.Errorf("fmt %v, want cmw", f)
	}
	node(t, res.Root, inspect.KindKC, "attStmt", "cmw", "kc")
}

func TestInspectKC(t *testing.T) {
	t.Run("golden", func(t *testing.T) {
		res := run(t, golden(t, "kc.cbor"), inspect.Options{})
		if res.Root.Kind != inspect.KindKC {
			t.Fatalf("recognised as %s, want kc", res.Root.Kind)
		}
		if got := find(t, res.Root, "iat").(time.Time); got.Unix() != 1_800_000_000 {
			t.Errorf("iat %v, want the golden 1800000000", got)
		}
		if got := find(t, res.Root, "intuse"); got != evidence.IntendedUseIssuance {
			t.Errorf("intuse %v", got)
		}
	})
	t.Run("fresh key", func(t *testing.T) {
		k := newKey(t)
		nonce := bytes.Repeat([]byte{7}, evidence.NonceSize)
		kc, err := evidence.NewKC(k.Public(), nonce, testNow)
		if err != nil {
			t.Fatal(err)
		}
		res := run(t, kc, inspect.Options{})
		if got := hexAt(t, res.Root, "cnf", "spki_sha256"); !bytes.Equal(got, spkiSHA256(t, k.Public())) {
			t.Errorf("cnf fingerprint %x, want the key's", got)
		}
		if got := find(t, res.Root, "cnf", "type"); got != "ECDSA P-256" {
			t.Errorf("cnf type %v", got)
		}
		if got := hexAt(t, res.Root, "eat_nonce"); !bytes.Equal(got, nonce) {
			t.Errorf("eat_nonce %x", got)
		}
		wantText(t, res, "cnf (8)", "ECDSA P-256, SHA-256(SPKI) "+hex.EncodeToString(spkiSHA256(t, k.Public())))
	})
	t.Run("an extra claim is shown in diagnostic notation", func(t *testing.T) {
		var tag cbor.RawTag
		if err := cbor.Unmarshal(golden(t, "kc.cbor"), &tag); err != nil {
			t.Fatal(err)
		}
		var claims map[int64]cbor.RawMessage
		if err := cbor.Unmarshal(tag.Content, &claims); err != nil {
			t.Fatal(err)
		}
		claims[-70000] = cbor.RawMessage{0x63, 'a', 'b', 'c'} // "abc"
		b, err := evidence.DetEncMode().Marshal(cbor.Tag{Number: evidence.TagUCCS, Content: claims})
		if err != nil {
			t.Fatal(err)
		}
		res := run(t, b, inspect.Options{})
		if got := find(t, res.Root, "other_claims", "-70000"); got != `"abc"` {
			t.Errorf("extra claim shown as %v, want \"abc\"", got)
		}
	})
}

// A bundle whose platform evidence is a simulated SEV-SNP report over D:
// every field the operator needs, and the binding holds. Swapping the kc
// makes the binding visibly fail.
func TestInspectBundle(t *testing.T) {
	key := newKey(t)
	ans := answer(t, snpAttester(t, false), key.Public())

	t.Run("SEV-SNP, bound", func(t *testing.T) {
		res := run(t, ans.Bundle, inspect.Options{})
		if res.Root.Kind != inspect.KindBundle {
			t.Fatalf("recognised as %s, want bundle", res.Root.Kind)
		}
		report := node(t, res.Root, inspect.KindSNPReport, "platform", "outblob")
		if got := hexAt(t, report, "report_data"); !bytes.Equal(got, ans.D) {
			t.Errorf("REPORT_DATA %x, want D %x", got, ans.D)
		}
		if find(t, res.Root, "binding", "matches") != true {
			t.Errorf("binding matches = %v, want true", find(t, res.Root, "binding", "matches"))
		}
		if got := hexAt(t, res.Root, "kc", "cnf", "spki_sha256"); !bytes.Equal(got, spkiSHA256(t, key.Public())) {
			t.Errorf("kc key %x, want the certificate key's fingerprint", got)
		}
		wantText(t, res, "REPORT_DATA = D: this platform evidence is over this kc")
	})
	t.Run("kc swapped", func(t *testing.T) {
		other, err := evidence.NewKC(newKey(t).Public(), ans.Nonce, testNow)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := evidence.ParseBundle(ans.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		swapped, err := evidence.Bundle{KC: other, Platform: parsed.Platform}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		res := run(t, swapped, inspect.Options{})
		if find(t, res.Root, "binding", "matches") != false {
			t.Errorf("binding matches = %v for a swapped kc, want false", find(t, res.Root, "binding", "matches"))
		}
		wantText(t, res, "MISMATCH: REPORT_DATA is not D")
	})
	t.Run("payload", func(t *testing.T) {
		res := run(t, ans.Payload, inspect.Options{})
		node(t, res.Root, inspect.KindSNPReport, "attObj", "attStmt", "cmw", "platform", "outblob")
	})
}

// configfs-tsm report maps of a simulated SEV-SNP guest: the report fields,
// the POLICY's debug bit, the TCB parts and the certificate table.
func TestInspectTSMReportSEVSNP(t *testing.T) {
	d := sha512.Sum512([]byte("inspect SEV-SNP"))
	for _, debug := range []bool{false, true} {
		t.Run(map[bool]string{false: "no debug", true: "debug"}[debug], func(t *testing.T) {
			ev, err := snpAttester(t, debug).Attest(t.Context(), d[:])
			if err != nil {
				t.Fatal(err)
			}
			res := run(t, ev.Data, inspect.Options{})
			if res.Root.Kind != inspect.KindTSMReport || find(t, res.Root, "provider") != tsm.ProviderSNP {
				t.Fatalf("recognised as %s with provider %v", res.Root.Kind, find(t, res.Root, "provider"))
			}
			r := node(t, res.Root, inspect.KindSNPReport, "outblob")
			for _, c := range []struct {
				key  string
				want []byte
			}{{"measurement", snpMeasurement}, {"host_data", snpHostData}, {"report_data", d[:]}} {
				if got := hexAt(t, r, c.key); !bytes.Equal(got, c.want) {
					t.Errorf("%s %x, want %x", c.key, got, c.want)
				}
			}
			if got := find(t, r, "policy", "debug"); got != debug {
				t.Errorf("POLICY debug %v, want %v", got, debug)
			}
			if got := find(t, r, "policy", "smt"); got != true {
				t.Errorf("POLICY SMT %v, want true", got)
			}
			if got := find(t, r, "vmpl"); got != uint32(0) {
				t.Errorf("VMPL %v, want 0", got)
			}
			for key, want := range map[string]uint8{"boot_loader": 3, "tee": 0, "snp": 8, "microcode": 115} {
				if got := find(t, r, "reported_tcb", key); got != want {
					t.Errorf("REPORTED_TCB %s %v, want %d", key, got, want)
				}
			}
			if got := len(hexAt(t, r, "chip_id")); got != 64 {
				t.Errorf("CHIP_ID is %d bytes, want 64", got)
			}
			if got := find(t, r, "signer_info", "signing_key"); got != "VCEK" {
				t.Errorf("signing key %v, want VCEK", got)
			}
			for _, name := range []string{"vcek", "ask", "ark"} {
				c := node(t, res.Root, inspect.KindCertificate, "auxblob", name)
				if s := find(t, c, "subject").(string); !strings.Contains(s, "Advanced Micro Devices") {
					t.Errorf("%s subject %q", name, s)
				}
			}
			wantText(t, res, "MEASUREMENT", hex.EncodeToString(snpMeasurement), "REPORTED_TCB", "(boot loader 3, TEE 0, SNP 8, microcode 115)", "not verified here")
			if debug {
				wantText(t, res, "DEBUG ALLOWED", "POLICY allows DEBUG")
			} else if strings.Contains(text(t, res), "DEBUG ALLOWED") {
				t.Error("a non-debug guest is shown as DEBUG ALLOWED")
			}
		})
	}
}

// configfs-tsm report maps of a simulated TD: the quote's measurements and
// TD_ATTRIBUTES' debug bit.
func TestInspectTSMReportTDX(t *testing.T) {
	d := sha512.Sum512([]byte("inspect TDX"))
	for _, debug := range []bool{false, true} {
		t.Run(map[bool]string{false: "no debug", true: "debug"}[debug], func(t *testing.T) {
			ev, err := tdxAttester(t, debug).Attest(t.Context(), d[:])
			if err != nil {
				t.Fatal(err)
			}
			res := run(t, ev.Data, inspect.Options{})
			if find(t, res.Root, "provider") != tsm.ProviderTDX {
				t.Fatalf("provider %v", find(t, res.Root, "provider"))
			}
			q := node(t, res.Root, inspect.KindTDXQuote, "outblob")
			for _, c := range []struct {
				key  string
				want []byte
			}{{"mrtd", tdxMRTD}, {"rtmr0", make([]byte, 48)}, {"rtmr2", tdxRTMR2}, {"reportdata", d[:]}} {
				if got := hexAt(t, q, c.key); !bytes.Equal(got, c.want) {
					t.Errorf("%s %x, want %x", c.key, got, c.want)
				}
			}
			if got := find(t, q, "td_attributes", "debug"); got != debug {
				t.Errorf("TD_ATTRIBUTES debug %v, want %v", got, debug)
			}
			if got := find(t, q, "td_attributes", "sept_ve_disable"); got != true {
				t.Errorf("SEPT_VE_DISABLE %v, want true", got)
			}
			if got := find(t, q, "pck_chain", "fmspc"); got == "" {
				t.Error("no FMSPC from the PCK certificate")
			}
			wantText(t, res, "MRTD", hex.EncodeToString(tdxMRTD), "RTMR3", "TD_ATTRIBUTES", "REPORTDATA")
			if debug {
				wantText(t, res, "DEBUG TD", "TD_ATTRIBUTES.DEBUG is set")
			}
		})
	}
	t.Run("a malformed quote is shown, not a panic", func(t *testing.T) {
		ev, err := tdxAttester(t, false).Attest(t.Context(), d[:])
		if err != nil {
			t.Fatal(err)
		}
		r, err := tsm.ParseReport(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		r.OutBlob = r.OutBlob[:len(r.OutBlob)-100]
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		res := run(t, b, inspect.Options{})
		out := node(t, res.Root, inspect.KindOpaque, "outblob")
		if e, _ := find(t, out, "error").(string); !strings.HasPrefix(e, "tdx:") {
			t.Errorf("error %q, want the TDX parser's", e)
		}
	})
}

// A TPM quote from the in-process simulator: the AK, the TPMS_ATTEST with D
// as extraData, the PCR values; in a bundle, the binding over SHA-256.
func TestInspectTPMQuote(t *testing.T) {
	a := tpmAttester(t)
	key := newKey(t)
	ans := answer(t, a, key.Public())
	parsed, err := evidence.ParseBundle(ans.Bundle)
	if err != nil {
		t.Fatal(err)
	}

	res := run(t, parsed.Platform.Data, inspect.Options{})
	if res.Root.Kind != inspect.KindTPMQuote {
		t.Fatalf("recognised as %s, want tpm-quote", res.Root.Kind)
	}
	if got := hexAt(t, res.Root, "ak", "spki_sha256"); !bytes.Equal(got, spkiSHA256(t, a.AKPublic())) {
		t.Errorf("AK fingerprint %x, want the attester's AK", got)
	}
	if got := hexAt(t, res.Root, "quoted", "extra_data"); !bytes.Equal(got, ans.D) {
		t.Errorf("extraData %x, want D %x", got, ans.D)
	}
	if got := find(t, res.Root, "quoted", "type"); got != "0x8018 (TPM_ST_ATTEST_QUOTE)" {
		t.Errorf("attestation type %v", got)
	}
	if got := find(t, res.Root, "sig", "scheme"); got != "ECDSA" {
		t.Errorf("signature scheme %v", got)
	}
	if got := len(hexAt(t, res.Root, "pcrs", "sha256", "0")); got != 32 {
		t.Errorf("PCR sha256:0 is %d bytes", got)
	}
	wantText(t, res, "TPM 2.0 quote", "restricted", "TPM_ST_ATTEST_QUOTE", "PCR 0", "not verified here")

	b := run(t, ans.Bundle, inspect.Options{})
	if find(t, b.Root, "binding", "matches") != true || find(t, b.Root, "binding", "hash") != "SHA-256" {
		t.Errorf("bundle binding %v over %v, want true over SHA-256", find(t, b.Root, "binding", "matches"), find(t, b.Root, "binding", "hash"))
	}
}

// An EAR signed by verifier.Signer: claims decoded, the signature said to
// be unverified without a key, valid with the right one, and a problem with
// the wrong one.
func TestInspectEAR(t *testing.T) {
	signer, key := newKey(t), newKey(t)
	nonce := bytes.Repeat([]byte{0x5e}, 32)
	tok := signEAR(t, signer, key.Public(), nonce)

	t.Run("no key", func(t *testing.T) {
		res := run(t, tok, inspect.Options{})
		if res.Root.Kind != inspect.KindEAR || res.Encoding != inspect.EncodingText {
			t.Fatalf("recognised as %s (%s), want ear (text)", res.Root.Kind, res.Encoding)
		}
		if got := find(t, res.Root, "signature", "status"); got != "not verified" {
			t.Errorf("signature status %v", got)
		}
		if len(res.Problems) != 0 {
			t.Errorf("problems %v without a key", res.Problems)
		}
		sm := []string{"submods", "sev-snp"}
		if got := find(t, res.Root, append(sm, "status")...); got != "affirming" {
			t.Errorf("status %v", got)
		}
		if got := find(t, res.Root, append(sm, "workload")...); got != "web" {
			t.Errorf("workload %v", got)
		}
		if got := hexAt(t, res.Root, append(sm, "akpub", "spki_sha256")...); !bytes.Equal(got, spkiSHA256(t, key.Public())) {
			t.Errorf("akpub fingerprint %x, want the attested key's", got)
		}
		if got := find(t, res.Root, append(sm, "trust_vector", "instance-identity", "description")...); got != "recognized and not compromised" {
			t.Errorf("instance-identity description %q", got)
		}
		if got := find(t, res.Root, append(sm, "trust_vector", "storage-opaque", "tier")...); got != "none" {
			t.Errorf("storage-opaque tier %v", got)
		}
		if got := hexAt(t, res.Root, "eat_nonce", "hex"); !bytes.Equal(got, nonce) {
			t.Errorf("eat_nonce %x", got)
		}
		if got := find(t, res.Root, "iat").(time.Time); !got.Equal(testNow) {
			t.Errorf("iat %v, want %v", got, testNow)
		}
		wantText(t, res, "NOT VERIFIED", "signature NOT verified", "ES256", "workload", "web",
			"instance-identity    2  affirming        recognized and not compromised", "0s ago")
	})
	t.Run("right key", func(t *testing.T) {
		res := run(t, tok, inspect.Options{EARKey: &signer.PublicKey})
		if got := find(t, res.Root, "signature", "status"); got != "valid" || len(res.Problems) != 0 {
			t.Errorf("signature %v, problems %v; want valid and none", got, res.Problems)
		}
		if strings.Contains(text(t, res), "NOT VERIFIED") {
			t.Error("a verified EAR is shown as NOT VERIFIED")
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		res := run(t, tok, inspect.Options{EARKey: &newKey(t).PublicKey})
		if got := find(t, res.Root, "signature", "status"); got != "invalid" {
			t.Errorf("signature %v, want invalid", got)
		}
		if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "EAR signature does not verify") {
			t.Errorf("problems %v", res.Problems)
		}
		wantText(t, res, "INVALID under the given key")
	})
	t.Run("tampered claims", func(t *testing.T) {
		parts := strings.Split(string(tok), ".")
		claims, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		parts[1] = base64.RawURLEncoding.EncodeToString(bytes.Replace(claims, []byte(`"web"`), []byte(`"adm"`), 1))
		res := run(t, []byte(strings.Join(parts, ".")), inspect.Options{EARKey: &signer.PublicKey})
		if got := find(t, res.Root, "signature", "status"); got != "invalid" || len(res.Problems) == 0 {
			t.Errorf("a tampered EAR: signature %v, problems %v", got, res.Problems)
		}
	})
	t.Run("a key but no EAR", func(t *testing.T) {
		res := run(t, golden(t, "kc.cbor"), inspect.Options{EARKey: &signer.PublicKey})
		if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "no EAR to verify") {
			t.Errorf("problems %v", res.Problems)
		}
	})
}

// A certificate as the CA issues it: subject, PermanentIdentifier SAN,
// validity, key, and the EAR in id-pe-cmw, whose akpub is the key.
func TestInspectCertificate(t *testing.T) {
	signer, key := newKey(t), newKey(t)
	der := earCertificate(t, key, "web-01", signEAR(t, signer, key.Public(), bytes.Repeat([]byte{1}, 32)))
	for _, c := range []struct {
		name, encoding string
		input          []byte
	}{
		{"DER", inspect.EncodingBinary, der},
		{"PEM", inspect.EncodingPEM, pemEncode("CERTIFICATE", der)},
		{"base64", inspect.EncodingBase64, []byte(base64.StdEncoding.EncodeToString(der))},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := run(t, c.input, inspect.Options{EARKey: &signer.PublicKey})
			if res.Encoding != c.encoding || res.Root.Kind != inspect.KindCertificate {
				t.Fatalf("read as %s, recognised as %s", res.Encoding, res.Root.Kind)
			}
			if got := find(t, res.Root, "sans", "permanent_identifiers", "0", "identifier"); got != "web-01" {
				t.Errorf("PermanentIdentifier %v, want web-01", got)
			}
			if got := hexAt(t, res.Root, "public_key", "spki_sha256"); !bytes.Equal(got, spkiSHA256(t, key.Public())) {
				t.Errorf("key fingerprint %x", got)
			}
			if got := find(t, res.Root, "validity", "status"); got != "valid now" {
				t.Errorf("validity %v", got)
			}
			rec := node(t, res.Root, inspect.KindCMWRecord, "id_pe_cmw")
			if got := find(t, rec, "indicator"); got != uint(cmw.AttestationResults) {
				t.Errorf("indicator %v, want %d", got, cmw.AttestationResults)
			}
			if got := find(t, rec, "critical"); got != false {
				t.Errorf("critical %v", got)
			}
			e := node(t, rec, inspect.KindEAR, "value")
			if got := find(t, e, "signature", "status"); got != "valid" {
				t.Errorf("EAR signature %v", got)
			}
			if got := find(t, res.Root, "akpub_is_public_key"); got != true {
				t.Errorf("akpub is the certificate key: %v", got)
			}
			wantText(t, res, "PermanentIdentifier  web-01", "id-pe-cmw", "1.3.6.1.5.5.7.1.35 id-pe-cmw", "EAR akpub = key", "the EAR attests this certificate's key")
		})
	}
	t.Run("EAR for another key", func(t *testing.T) {
		der := earCertificate(t, key, "web-01", signEAR(t, signer, newKey(t).Public(), bytes.Repeat([]byte{1}, 32)))
		res := run(t, der, inspect.Options{})
		if got := find(t, res.Root, "akpub_is_public_key"); got != false {
			t.Errorf("akpub is the certificate key: %v, want false", got)
		}
		wantText(t, res, "NO: the EAR attests another key", "NOT VERIFIED")
	})
	t.Run("expired", func(t *testing.T) {
		res := run(t, der, inspect.Options{Now: func() time.Time { return testNow.Add(48 * time.Hour) }})
		if got := find(t, res.Root, "validity", "status"); got != "EXPIRED" {
			t.Errorf("validity %v, want EXPIRED", got)
		}
	})
}

// A CMW record on its own (the id-pe-cmw value) is shown with its EAR.
func TestInspectCMWRecord(t *testing.T) {
	tok := signEAR(t, newKey(t), newKey(t).Public(), bytes.Repeat([]byte{1}, 32))
	m, err := cmw.NewMonad(`application/eat+jwt; eat_profile="tag:github.com,2023:veraison/ear"`, tok, cmw.AttestationResults)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, b, inspect.Options{})
	if res.Root.Kind != inspect.KindCMWRecord {
		t.Fatalf("recognised as %s", res.Root.Kind)
	}
	node(t, res.Root, inspect.KindEAR, "value")
}

// One kc, written every way the input may come: each is read and named.
func TestInspectEncodings(t *testing.T) {
	kc := golden(t, "kc.cbor")
	wrapped := func(s string) string {
		var b strings.Builder
		for len(s) > 64 {
			b.WriteString(s[:64] + "\n")
			s = s[64:]
		}
		return b.String() + s + "\n"
	}
	for _, c := range []struct {
		name, input, encoding string
	}{
		{"binary", string(kc), inspect.EncodingBinary},
		{"hex", hex.EncodeToString(kc) + "\n", inspect.EncodingHex},
		{"hex upper case with 0x", "0x" + strings.ToUpper(hex.EncodeToString(kc)), inspect.EncodingHex},
		{"base64 wrapped", wrapped(base64.StdEncoding.EncodeToString(kc)), inspect.EncodingBase64},
		{"base64 unpadded", base64.RawStdEncoding.EncodeToString(kc), inspect.EncodingBase64},
		{"base64url unpadded", base64.RawURLEncoding.EncodeToString(kc), inspect.EncodingBase64URL},
		{"PEM", string(pemEncode("KEY CONFIRMATION", kc)), inspect.EncodingPEM},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := run(t, []byte(c.input), inspect.Options{})
			if res.Encoding != c.encoding || res.Root.Kind != inspect.KindKC {
				t.Errorf("read as %s, recognised as %s; want %s, kc", res.Encoding, res.Root.Kind, c.encoding)
			}
		})
	}
	t.Run("two PEM blocks", func(t *testing.T) {
		in := append(pemEncode("KEY CONFIRMATION", kc), pemEncode("BUNDLE", golden(t, "bundle.cbor"))...)
		res := run(t, in, inspect.Options{})
		if res.Root.Kind != inspect.KindPEM {
			t.Fatalf("recognised as %s", res.Root.Kind)
		}
		node(t, res.Root, inspect.KindKC, "block_1")
		node(t, res.Root, inspect.KindBundle, "block_2")
	})
}

// Input that is none of the known objects is refused with every reading
// tried and, where a parser recognised the shape, its own error.
func TestInspectRejects(t *testing.T) {
	badBundle := func() []byte {
		b, err := evidence.DetEncMode().Marshal(map[string]any{"__cmwc_t": evidence.CollectionType, "kc": 1})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	badPayload := []byte(`{"attObj":"not base64url!"}`)
	for _, c := range []struct {
		name  string
		input []byte
		want  []string
	}{
		{"empty", nil, []string{"as raw bytes: empty"}},
		{"random bytes", []byte{0xff, 0x00, 0x13, 0x37, 0x42}, []string{"as raw bytes: binary starting with 0xff0013", "which is none of: CBOR", "not tried: the input is binary"}},
		{"prose", []byte("hello, world"), []string{"as raw bytes:", "as hex: not hex", "as base64: not base64", "as base64url: not base64url"}},
		{"JSON of another kind", []byte(`{"token":"x"}`), []string{`members ["token"]`, "neither a device-attest-01 payload"}},
		{"payload with bad attObj", badPayload, []string{"payload: attObj is not unpadded base64url"}},
		{"CBOR map of another kind", []byte{0xa1, 0x61, 'x', 0x01}, []string{`keys ["x"]`, "none of: attestation object"}},
		{"bundle that does not parse", badBundle, []string{`bundle: record "kc" is not [media type, value, indicator]`}},
		{"kc with a wrong tag body", []byte{0xd9, 0x02, 0x59, 0xa0}, []string{"kc: claim eat_nonce (10) is missing"}},
		{"truncated attestation object", golden(t, "attobj.cbor")[:100], []string{"as raw bytes: CBOR map that is not one well-formed item: unexpected EOF"}},
		{"hex of nothing known", []byte("00010203"), []string{"as hex: 4 bytes decoded;"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := inspect.Inspect(c.input, inspect.Options{})
			var nr *inspect.NotRecognisedError
			if !errors.As(err, &nr) {
				t.Fatalf("Inspect = %v, %v; want a NotRecognisedError", res, err)
			}
			if nr.Size != len(c.input) {
				t.Errorf("Size %d, want %d", nr.Size, len(c.input))
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "input (") || !strings.Contains(msg, "was not recognised as a device-attest-01 payload") {
				t.Errorf("message does not say what it is about: %s", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestInspectTooLarge(t *testing.T) {
	for _, size := range []int{inspect.MaxInputSize + 1, 2 * inspect.MaxInputSize} {
		_, err := inspect.Inspect(make([]byte, size), inspect.Options{})
		if !errors.Is(err, inspect.ErrTooLarge) {
			t.Errorf("%d bytes: %v, want ErrTooLarge", size, err)
		}
	}
	if !strings.Contains(inspect.ErrTooLarge.Error(), "1 MiB") {
		t.Errorf("the error does not name the limit: %v", inspect.ErrTooLarge)
	}
	// Exactly the limit is read (and here, not recognised).
	var nr *inspect.NotRecognisedError
	if _, err := inspect.Inspect(make([]byte, inspect.MaxInputSize), inspect.Options{}); !errors.As(err, &nr) {
		t.Errorf("%d bytes: %v, want not recognised", inspect.MaxInputSize, err)
	}
}

// The JSON output names each object's kind and keeps values whole that the
// text output shortens.
func TestInspectJSONKeepsFullValues(t *testing.T) {
	res := run(t, golden(t, "bundle.cbor"), inspect.Options{})
	out := text(t, res)
	d := hex.EncodeToString(goldenHex(t, "d-sha512.hex"))
	if strings.Contains(out, d) {
		t.Error("text output shows a 64-byte value in full")
	}
	var b bytes.Buffer
	if err := res.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"d": "` + d + `"`, `"kind": "bundle"`, `"kind": "kc"`, `"problems": []`, `"encoding": "binary"`} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("JSON lacks %s:\n%s", w, b.String())
		}
	}
	// The payload nests the same bundle.
	p := run(t, golden(t, "payload.json"), inspect.Options{})
	if c := challengeFormat(t, p); c != challenge.Format {
		t.Errorf("fmt %q", c)
	}
}

func challengeFormat(t *testing.T, r *inspect.Result) string {
	t.Helper()
	return find(t, r.Root, "attObj", "fmt").(string)
}

// What configfs-tsm returns, without the report map: a bare SEV-SNP report
// or TDX quote is recognised by its own format.
func TestInspectBareOutblobs(t *testing.T) {
	d := sha512.Sum512([]byte("inspect outblob"))
	for _, c := range []struct {
		name string
		att  interface {
			Attest(ctx context.Context, d []byte) (evidence.Evidence, error)
		}
		kind  inspect.Kind
		field string
	}{
		{"SEV-SNP", snpAttester(t, false), inspect.KindSNPReport, "report_data"},
		{"TDX", tdxAttester(t, false), inspect.KindTDXQuote, "reportdata"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev, err := c.att.Attest(t.Context(), d[:])
			if err != nil {
				t.Fatal(err)
			}
			r, err := tsm.ParseReport(ev.Data)
			if err != nil {
				t.Fatal(err)
			}
			res := run(t, r.OutBlob, inspect.Options{})
			if res.Root.Kind != c.kind {
				t.Fatalf("recognised as %s, want %s", res.Root.Kind, c.kind)
			}
			if got := hexAt(t, res.Root, c.field); !bytes.Equal(got, d[:]) {
				t.Errorf("%s %x, want %x", c.field, got, d)
			}
		})
	}
}

// EAR claims given as JSON (a decoded JWT payload) are shown, and said to
// carry no signature; with a key that is a problem.
func TestInspectEARClaimsJSON(t *testing.T) {
	tok := signEAR(t, newKey(t), newKey(t).Public(), bytes.Repeat([]byte{2}, 32))
	claims, err := base64.RawURLEncoding.DecodeString(strings.Split(string(tok), ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, claims, inspect.Options{})
	if res.Root.Kind != inspect.KindEAR || find(t, res.Root, "signature", "status") != "absent" {
		t.Fatalf("recognised as %s, signature %v", res.Root.Kind, find(t, res.Root, "signature", "status"))
	}
	if got := find(t, res.Root, "submods", "sev-snp", "workload"); got != "web" {
		t.Errorf("workload %v", got)
	}
	wantText(t, res, "NONE: this is a bare claims set")
	res = run(t, claims, inspect.Options{EARKey: &newKey(t).PublicKey})
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "no signature to verify") {
		t.Errorf("problems %v", res.Problems)
	}
}

// A JWS whose payload is not an EAR is shown as a JWS, with why.
func TestInspectJWSNotEAR(t *testing.T) {
	tok, err := jws.Sign([]byte(`{"sub":"someone"}`), jws.WithKey(jwa.ES256(), newKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, tok, inspect.Options{})
	if res.Root.Kind != inspect.KindJWS {
		t.Fatalf("recognised as %s, want jws", res.Root.Kind)
	}
	if e, _ := find(t, res.Root, "payload_error").(string); !strings.Contains(e, "eat_profile") {
		t.Errorf("payload error %q", e)
	}
}

// A CMW record of another media type: its value is recognised on its own,
// and a collection shows its items.
func TestInspectCMWOfOtherTypes(t *testing.T) {
	kc := golden(t, "kc.cbor")
	m, err := cmw.NewMonad(evidence.MediaTypeKC, kc, cmw.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, b, inspect.Options{})
	node(t, res.Root, inspect.KindKC, "value")

	c, err := cmw.NewCollection("tag:example.com,2026:other")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddCollectionItem("kc", m); err != nil {
		t.Fatal(err)
	}
	ext, err := c.EncodeX509Extension(cmw.ChoiceCbor, false)
	if err != nil {
		t.Fatal(err)
	}
	res = run(t, certificateWith(t, newKey(t), "db-1", *ext), inspect.Options{})
	coll := node(t, res.Root, inspect.KindCMWRecord, "id_pe_cmw")
	if got := find(t, coll, "__cmwc_t"); got != "tag:example.com,2026:other" {
		t.Errorf("__cmwc_t %v", got)
	}
	node(t, coll, inspect.KindKC, "items", "kc", "value")
}
