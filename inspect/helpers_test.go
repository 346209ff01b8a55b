package inspect_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/attest-acme/attest-acme/inspect"
	"github.com/attest-acme/attest-acme/verifier"
	"github.com/google/go-sev-guest/abi"
	"github.com/veraison/cmw"
	"github.com/veraison/ear"
	"go.step.sm/crypto/x509util"
)

// testNow is the clock of every test: artefacts are made at it and
// inspected at it, so relative statements are fixed.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return testNow }

// Values the simulated platforms report, so tests can find them again.
var (
	snpMeasurement = bytes.Repeat([]byte{0x4d}, 48)
	snpHostData    = bytes.Repeat([]byte{0x48}, 32)
	tdxMRTD        = bytes.Repeat([]byte{0xa5}, 48)
	tdxRTMR2       = bytes.Repeat([]byte{0x5a}, 48)
)

// snpReportedTCB is REPORTED_TCB: boot loader 3, TEE 0, SNP 8, microcode 115.
const snpReportedTCB = uint64(115)<<56 | uint64(8)<<48 | 3

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyAuthorization is a key authorization as step-ca would compute it.
func keyAuthorization(t testing.TB) string {
	t.Helper()
	ka, err := challenge.KeyAuthorization("inspect-test-token", "bsNNzgFbUhbz3X4ZbpeBb9TDKN4qvLVNbeJjm6SiYj8")
	if err != nil {
		t.Fatal(err)
	}
	return ka
}

// answer runs the client's side of the challenge with a as the platform.
func answer(t testing.TB, a evidence.Attester, pub crypto.PublicKey) *challenge.Answer {
	t.Helper()
	ans, err := challenge.NewAnswer(t.Context(), a, keyAuthorization(t), pub, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

// snpAttester is a simulated SEV-SNP guest with recognisable values.
func snpAttester(t testing.TB, debug bool) *sim.SNP {
	t.Helper()
	s, err := sim.NewSNP(sim.SNPOptions{
		Measurement: snpMeasurement,
		HostData:    snpHostData,
		Policy:      abi.SnpPolicy{SMT: true, Debug: debug},
		ReportedTCB: snpReportedTCB,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tdxAttester is a simulated TD with recognisable values.
func tdxAttester(t testing.TB, debug bool) *sim.TDX {
	t.Helper()
	td, err := sim.NewTDX(sim.TDXOptions{MRTD: tdxMRTD, RTMR: [4][]byte{2: tdxRTMR2}, TDAttributes: sim.TDXAttrSEPTVEDisable, Debug: debug})
	if err != nil {
		t.Fatal(err)
	}
	return td
}

// tpmAttester opens the in-process TPM simulator, or skips the test when
// this build cannot (no cgo).
func tpmAttester(t testing.TB) *tpm.Attester {
	t.Helper()
	dev, err := tpm.OpenSimulator()
	if err != nil {
		t.Skipf("the in-process TPM simulator cannot be opened here: %v", err)
	}
	a, err := tpm.NewAttester(dev, tpm.Config{})
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		dev.Close()
	})
	return a
}

// signEAR signs an EAR as the verifier does after an affirming SEV-SNP
// appraisal of key, for the workload "web".
func signEAR(t testing.TB, signer *ecdsa.PrivateKey, key crypto.PublicKey, nonce []byte) []byte {
	t.Helper()
	s, err := verifier.NewSigner(signer, clock)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(verifier.Outcome{
		Platform: verifier.PlatformSEVSNP,
		Status:   ear.TrustTierAffirming,
		TrustVector: ear.TrustVector{
			InstanceIdentity: ear.TrustworthyInstanceClaim,
			Configuration:    ear.ApprovedConfigClaim,
			Executables:      ear.ApprovedRuntimeClaim,
			Hardware:         ear.GenuineHardwareClaim,
			RuntimeOpaque:    ear.EncryptedMemoryRuntimeClaim,
		},
		PolicyID: "attest-acme/inspect-test",
		Key:      key,
		Workload: "web",
		Nonce:    nonce,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// earCertificate issues a certificate for key as attest-acme's CA does: the
// attested-leaf template with a PermanentIdentifier SAN, signed by a
// throw-away CA, with the EAR in a non-critical id-pe-cmw extension.
func earCertificate(t testing.TB, key crypto.Signer, id string, earToken []byte) []byte {
	t.Helper()
	m, err := cmw.NewMonad(`application/eat+jwt; eat_profile="tag:github.com,2023:veraison/ear"`, earToken, cmw.AttestationResults)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := m.EncodeX509Extension(cmw.ChoiceCbor, false)
	if err != nil {
		t.Fatal(err)
	}
	return certificateWith(t, key, id, *ext)
}

// certificateWith issues a certificate for key with a PermanentIdentifier
// SAN and the given extension.
func certificateWith(t testing.TB, key crypto.Signer, id string, ext pkix.Extension) []byte {
	t.Helper()
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	data := x509util.NewTemplateData()
	data.SetSubjectAlternativeNames(x509util.SubjectAlternativeName{Type: x509util.PermanentIdentifierType, Value: id})
	c, err := x509util.NewCertificate(cr, x509util.WithTemplate(x509util.DefaultAttestedLeafTemplate, data))
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.GetCertificate()
	leaf.SerialNumber = big.NewInt(0x1234_5678)
	leaf.NotBefore = testNow.Add(-time.Hour)
	leaf.NotAfter = testNow.Add(23 * time.Hour)

	leaf.ExtraExtensions = append(leaf.ExtraExtensions, ext)

	caKey := newKey(t)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attest-acme inspect test CA"},
		NotBefore: testNow.Add(-24 * time.Hour), NotAfter: testNow.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func publicKeyPEM(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemEncode("PUBLIC KEY", der)
}

// run inspects b and fails the test on error.
func run(t testing.TB, b []byte, opts inspect.Options) *inspect.Result {
	t.Helper()
	if opts.Now == nil {
		opts.Now = clock
	}
	res, err := inspect.Inspect(b, opts)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	checkJSON(t, res)
	return res
}

// find returns the value at path below n: field keys through nodes and
// groups, indices through lists. It fails the test when the path is absent.
func find(t testing.TB, n *inspect.Node, path ...string) any {
	t.Helper()
	var cur any = n
	for i, p := range path {
		var fields []inspect.Field
		switch v := cur.(type) {
		case *inspect.Node:
			fields = v.Fields
		case inspect.Group:
			fields = v
		case inspect.List:
			idx, err := strconv.Atoi(p)
			if err != nil || idx < 0 || idx >= len(v) {
				t.Fatalf("path %s: no list item %q", strings.Join(path[:i+1], "."), p)
			}
			cur = v[idx]
			continue
		default:
			t.Fatalf("path %s: %T holds no fields", strings.Join(path[:i], "."), cur)
		}
		found := false
		for _, f := range fields {
			if f.Key == p {
				cur, found = f.Value, true
				break
			}
		}
		if !found {
			t.Fatalf("path %s: no field %q", strings.Join(path[:i+1], "."), p)
		}
	}
	return cur
}

// node is find for a value that must be a node of the given kind.
func node(t testing.TB, n *inspect.Node, kind inspect.Kind, path ...string) *inspect.Node {
	t.Helper()
	v, ok := find(t, n, path...).(*inspect.Node)
	if !ok {
		t.Fatalf("%s is a %T, want a node", strings.Join(path, "."), find(t, n, path...))
	}
	if v.Kind != kind {
		t.Fatalf("%s is a %s node (%s), want %s", strings.Join(path, "."), v.Kind, v.Title, kind)
	}
	return v
}

// hexAt is find for a byte-string value.
func hexAt(t testing.TB, n *inspect.Node, path ...string) []byte {
	t.Helper()
	v, ok := find(t, n, path...).(inspect.Hex)
	if !ok {
		t.Fatalf("%s is a %T, want bytes", strings.Join(path, "."), find(t, n, path...))
	}
	return v
}

// text renders res as text.
func text(t testing.TB, res *inspect.Result) string {
	t.Helper()
	var b bytes.Buffer
	if err := res.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// wantText fails unless the text output contains every line fragment.
func wantText(t testing.TB, res *inspect.Result, fragments ...string) {
	t.Helper()
	out := text(t, res)
	for _, f := range fragments {
		if !strings.Contains(out, f) {
			t.Errorf("text output lacks %q:\n%s", f, out)
		}
	}
}

// checkJSON checks that the JSON output is valid, has no duplicate member
// names, and is the same on a second rendering.
func checkJSON(t testing.TB, res *inspect.Result) {
	t.Helper()
	var a, b bytes.Buffer
	if err := res.WriteJSON(&a); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
	if err := res.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two JSON renderings of one result differ")
	}
	if err := noDuplicateMembers(json.NewDecoder(bytes.NewReader(a.Bytes()))); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, a.String())
	}
}

// noDuplicateMembers reads one JSON value and fails on an object that
// names a member twice.
func noDuplicateMembers(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key := k.(string)
			if seen[key] {
				return &dupError{key}
			}
			seen[key] = true
			if err := noDuplicateMembers(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('['):
		for dec.More() {
			if err := noDuplicateMembers(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

type dupError struct{ key string }

func (e *dupError) Error() string { return "member " + strconv.Quote(e.key) + " appears twice" }

// golden reads a file of challenge/testdata/golden.
func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "challenge", "testdata", "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
