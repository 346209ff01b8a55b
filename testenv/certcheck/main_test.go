package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"github.com/attest-acme/attest-acme/challenge"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veraison/ear"
	"go.step.sm/crypto/x509util"

	"github.com/attest-acme/attest-acme/acmeclient"
	"github.com/attest-acme/attest-acme/verifier"
)

// now is the fixtures' clock.
func now() time.Time { return time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC) }

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// pki is a root and an intermediate, as the test environment's CA has.
type pki struct {
	root, inter *x509.Certificate
	interKey    *ecdsa.PrivateKey
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	rk, ik := newKey(t), newKey(t)
	mk := func(cn string, serial int64, pub crypto.PublicKey, parent *x509.Certificate, signer crypto.Signer) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now().Add(-time.Hour), NotAfter: now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	root := mk("test root", 1, rk.Public(), nil, rk)
	return &pki{root: root, inter: mk("test intermediate", 2, ik.Public(), root, rk), interKey: ik}
}

// fixture is what one test case stores and checks; cases change one thing.
type fixture struct {
	identifier string // stored under and asked for
	sanID      string // the certificate's PermanentIdentifier
	certKey    *ecdsa.PrivateKey
	storedKey  *ecdsa.PrivateKey // the key file beside the certificate
	akpub      crypto.PublicKey  // the EAR's attested key
	earSigner  *ecdsa.PrivateKey // signs the EAR
	pinnedKey  crypto.PublicKey  // the --ear-key given
	status     ear.TrustTier
	earNonce   []byte // in the EAR
	storedN    []byte // in the resource file
	noExt      bool   // no id-pe-cmw extension
	storedEAR  []byte // if set, stored instead of the certificate's EAR
	rootGiven  *x509.Certificate
	earTime    time.Time // the EAR's iat
	checkTime  time.Time
	maxAge     time.Duration
}

func goodFixture(t *testing.T, p *pki) *fixture {
	t.Helper()
	ck, vk := newKey(t), newKey(t)
	n := bytes.Repeat([]byte{7}, 32)
	return &fixture{
		identifier: "cvm-1", sanID: "cvm-1", certKey: ck, storedKey: ck, akpub: ck.Public(),
		earSigner: vk, pinnedKey: vk.Public(), status: ear.TrustTierAffirming,
		earNonce: n, storedN: n, rootGiven: p.root, earTime: now(), checkTime: now().Add(10 * time.Second), maxAge: 10 * time.Minute,
	}
}

// write stores the fixture as the client would and returns the options.
func (f *fixture) write(t *testing.T, p *pki) options {
	t.Helper()
	dir := t.TempDir()
	signer, err := verifier.NewSigner(f.earSigner, func() time.Time { return f.earTime })
	if err != nil {
		t.Fatal(err)
	}
	token, err := signer.Sign(verifier.Outcome{Platform: "sev-snp", Status: f.status, PolicyID: "test", Key: f.akpub, Workload: "demo", Nonce: f.earNonce})
	if err != nil {
		t.Fatal(err)
	}
	// As step-ca makes an attested leaf: its template, with the SAN as an extension.
	data := x509util.CreateTemplateData(f.sanID, nil)
	data.SetSubjectAlternativeNames(x509util.SubjectAlternativeName{Type: x509util.PermanentIdentifierType, Value: f.sanID})
	xc, err := x509util.NewCertificateFromX509(&x509.Certificate{PublicKey: f.certKey.Public(), Subject: pkix.Name{CommonName: f.sanID}},
		x509util.WithTemplate(x509util.DefaultAttestedLeafTemplate, data))
	if err != nil {
		t.Fatal(err)
	}
	xc.SerialNumber = x509util.SerialNumber{Int: big.NewInt(42)}
	xc.NotBefore, xc.NotAfter = now().Add(-10*time.Second), now().Add(50*time.Second)
	tmpl := xc.GetCertificate()
	if !f.noExt {
		ext, err := challenge.NewEARExtension(token)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ext)
	}
	leaf, err := x509util.CreateCertificate(tmpl, p.inter, f.certKey.Public(), p.interKey)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(cs ...*x509.Certificate) []byte {
		var b []byte
		for _, c := range cs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		return b
	}
	stored := token
	if f.storedEAR != nil {
		stored = f.storedEAR
	}
	c := &acmeclient.Certificate{
		Resource: acmeclient.Resource{
			Domain: f.identifier, Identifier: f.identifier, Server: "https://ca:8443/acme/attest/directory",
			KeyType: acmeclient.EC256, Serial: "2a", NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter,
			Nonce: hex.EncodeToString(f.storedN), ObtainedAt: now(),
		},
		Key: f.storedKey, Chain: []*x509.Certificate{leaf, p.inter},
		ChainPEM: pemOf(leaf, p.inter), IssuerPEM: pemOf(p.inter), EAR: stored,
	}
	if _, err := acmeclient.NewStorage(dir).Save(c); err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(rootFile, pemOf(f.rootGiven), 0o644); err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(f.pinnedKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "ear.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0o644); err != nil {
		t.Fatal(err)
	}
	return options{Dir: dir, Identifier: f.identifier, Root: rootFile, EARKey: keyFile, MaxAge: f.maxAge, Now: func() time.Time { return f.checkTime }}
}

func TestCheckPassesAnAttestedCertificate(t *testing.T) {
	p := newPKI(t)
	var out bytes.Buffer
	if err := check(goodFixture(t, p).write(t, p), &out); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	for _, want := range []string{"serial 2a", "ok chain", "ok identifier: PermanentIdentifier cvm-1", "ok key", "sev-snp affirming, workload \"demo\"", "ok akpub"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCheckRejects(t *testing.T) {
	p := newPKI(t)
	other := newKey(t)
	otherPKI := newPKI(t)
	tests := []struct {
		name   string
		change func(f *fixture)
		want   string
	}{
		{"a chain to another root", func(f *fixture) { f.rootGiven = otherPKI.root }, "chain: x509: certificate signed by unknown authority"},
		{"an expired certificate", func(f *fixture) { f.checkTime = now().Add(time.Minute) }, "chain: x509: certificate has expired"},
		{"a PermanentIdentifier other than the one asked for", func(f *fixture) { f.sanID = "cvm-2" }, `identifier: the certificate's PermanentIdentifier SANs are ["cvm-2"], want "cvm-1"`},
		{"a stored key that is not the certificate's", func(f *fixture) { f.storedKey = other }, "the key does not belong to the certificate"},
		{"no id-pe-cmw extension", func(f *fixture) { f.noExt = true }, "ear: id-pe-cmw: the certificate has no such extension"},
		{"a stored EAR other than the certificate's", func(f *fixture) { f.storedEAR = []byte("eyJhbGciOiJFUzI1NiJ9.e30.c2ln") }, "not the EAR stored beside it"},
		{"an EAR signed by another key than the pinned one", func(f *fixture) { f.earSigner = other }, "ear: EAR: signature"},
		{"an EAR for another challenge", func(f *fixture) { f.earNonce = bytes.Repeat([]byte{8}, 32) }, "eat_nonce is not the nonce of this challenge"},
		{"a stored nonce that is not 32 bytes", func(f *fixture) { f.storedN = []byte{1, 2, 3} }, "is not 32 bytes of hex"},
		{"an EAR that is not affirming", func(f *fixture) { f.status = ear.TrustTierContraindicated }, "status is contraindicated"},
		{"an EAR older than --max-age", func(f *fixture) { f.maxAge = 5 * time.Second }, "is more than 5s old"},
		{"an EAR whose akpub is another key", func(f *fixture) { f.akpub = other.Public() }, "ear: EAR: akpub is not the key named in the kc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := goodFixture(t, p)
			tt.change(f)
			var out bytes.Buffer
			err := check(f.write(t, p), &out)
			if err == nil {
				t.Fatalf("check passed, want an error containing %q\n%s", tt.want, out.String())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
