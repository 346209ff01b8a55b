package caplugin

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"github.com/attest-acme/attest-acme/challenge"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/smallstep/nosql"
	"github.com/veraison/cmw"
	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/x509util"
)

// newTestStore opens a bbolt database in a temporary directory.
func newTestStore(t *testing.T) *store {
	t.Helper()
	db, err := nosql.New(nosql.BBoltDriver, filepath.Join(t.TempDir(), "ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := newStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// leafTemplate builds the certificate template step-ca builds at finalize:
// the attested-leaf template with the given SANs, for key.
func leafTemplate(t *testing.T, key crypto.Signer, sans ...x509util.SubjectAlternativeName) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	data := x509util.NewTemplateData()
	data.SetSubjectAlternativeNames(sans...)
	c, err := x509util.NewCertificate(cr, x509util.WithTemplate(x509util.DefaultAttestedLeafTemplate, data))
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.GetCertificate()
	leaf.NotBefore = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	leaf.NotAfter = leaf.NotBefore.Add(7 * 24 * time.Hour)
	return leaf
}

func pid(id string) x509util.SubjectAlternativeName {
	return x509util.SubjectAlternativeName{Type: x509util.PermanentIdentifierType, Value: id}
}

func TestEnforcer(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := keyutil.Fingerprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	policy, err := NewIssuancePolicy([]IssuanceRule{
		{Workload: "web", PermanentIdentifiers: []string{"web-*"}, DNSNames: []string{"*.web.example"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	earToken := []byte("eyJhbGciOiJFUzI1NiJ9.e30.c2ln") // the enforcer copies it, it does not check it
	st := newTestStore(t)
	for _, r := range []*earRecord{
		{Fingerprint: fp, Identifier: "web-1", Workload: "web", EAR: string(earToken), ExpiresAt: now.Add(time.Hour)},
		{Fingerprint: fp, Identifier: "web-old", Workload: "web", EAR: string(earToken), ExpiresAt: now.Add(-time.Second)},
		{Fingerprint: fp, Identifier: "web-gone", Workload: "retired", EAR: string(earToken), ExpiresAt: now.Add(time.Hour)},
	} {
		if err := st.putEAR(r); err != nil {
			t.Fatal(err)
		}
	}
	e := &enforcer{store: st, policy: policy, maxLifetime: 24 * time.Hour, now: func() time.Time { return now },
		log: slog.New(slog.DiscardHandler)}

	ipSAN := x509util.SubjectAlternativeName{Type: x509util.IPType, Value: "10.0.0.1"}
	dnsSAN := func(n string) x509util.SubjectAlternativeName {
		return x509util.SubjectAlternativeName{Type: x509util.DNSType, Value: n}
	}
	for _, tc := range []struct {
		name    string
		key     crypto.Signer
		sans    []x509util.SubjectAlternativeName
		edit    func(*x509.Certificate)
		wantErr string
		wantEAR bool
	}{
		{name: "attested identifier gets the EAR", key: key, sans: []x509util.SubjectAlternativeName{pid("web-1")}, wantEAR: true},
		{name: "allowed DNS name beside it", key: key, sans: []x509util.SubjectAlternativeName{pid("web-1"), dnsSAN("a.web.example")}, wantEAR: true},
		{name: "DNS name the workload may not have", key: key, sans: []x509util.SubjectAlternativeName{pid("web-1"), dnsSAN("a.db.example")},
			wantErr: `workload "web" may not have DNS name "a.db.example"`},
		{name: "IP address SAN", key: key, sans: []x509util.SubjectAlternativeName{pid("web-1"), ipSAN},
			wantErr: "may not carry IP address SANs"},
		{name: "covered identifier without a stored result for this key", key: other, sans: []x509util.SubjectAlternativeName{pid("web-1")},
			wantErr: "no attestation result stored"},
		{name: "covered identifier never attested", key: key, sans: []x509util.SubjectAlternativeName{pid("web-2")},
			wantErr: `no attestation result stored for key ` + fp + ` and permanent-identifier "web-2"`},
		{name: "identifier of another attestation format passes unchanged", key: other, sans: []x509util.SubjectAlternativeName{pid("yubikey-123")}},
		{name: "expired result", key: key, sans: []x509util.SubjectAlternativeName{pid("web-old")}, wantErr: "expired"},
		{name: "workload no longer allowed", key: key, sans: []x509util.SubjectAlternativeName{pid("web-gone")}, wantErr: `workload "retired" has no issuance rule`},
		{name: "two permanent identifiers", key: key, sans: []x509util.SubjectAlternativeName{pid("web-1"), pid("web-2")}, wantErr: "2 permanent-identifier SANs"},
		{name: "plain DNS certificate passes unchanged", key: other, sans: []x509util.SubjectAlternativeName{dnsSAN("app.example"), ipSAN}},
		{name: "template that brings its own id-pe-cmw", key: other, sans: []x509util.SubjectAlternativeName{dnsSAN("app.example")},
			edit: func(c *x509.Certificate) {
				c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: cmw.OidExtCmw, Value: []byte{4, 0}})
			},
			wantErr: "only the CA adds it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := leafTemplate(t, tc.key, tc.sans...)
			if tc.edit != nil {
				tc.edit(leaf)
			}
			before := leaf.NotAfter
			nExt := len(leaf.ExtraExtensions)
			err := e.Enforce(leaf)
			checkErr(t, err, tc.wantErr)
			if err != nil {
				return
			}
			if !tc.wantEAR {
				if len(leaf.ExtraExtensions) != nExt || !leaf.NotAfter.Equal(before) {
					t.Fatal("a certificate that is not attested was changed")
				}
				return
			}
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 24*time.Hour {
				t.Errorf("lifetime %s, want capped at 24h", got)
			}
			// Sign it and read the EAR back the way a TLS peer would.
			signed := selfSign(t, leaf, key)
			got, err := challenge.EARFromCertificate(signed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, earToken) {
				t.Fatalf("EAR in the certificate %q, want %q", got, earToken)
			}
		})
	}
}

func selfSign(t *testing.T, tmpl *x509.Certificate, key crypto.Signer) *x509.Certificate {
	t.Helper()
	c, err := x509util.CreateCertificate(tmpl, tmpl, tmpl.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEARExtensionEncoding(t *testing.T) {
	ext, err := challenge.NewEARExtension([]byte("a.b.c"))
	if err != nil {
		t.Fatal(err)
	}
	if ext.Critical || !ext.Id.Equal(cmw.OidExtCmw) {
		t.Fatalf("extension %v critical %v, want non-critical id-pe-cmw", ext.Id, ext.Critical)
	}
	c, err := cmw.DecodeX509Extension(ext)
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := c.GetMonadType()
	ind, _ := c.GetMonadIndicator()
	v, _ := c.GetMonadValue()
	if mt != `application/eat+jwt; eat_profile="tag:github.com,2023:veraison/ear"` || ind != 8 || string(v) != "a.b.c" {
		t.Fatalf("record [%q, %q, %d], want the EAR media type, the EAR and 8", mt, v, ind)
	}

	for _, tc := range []struct {
		name    string
		exts    []pkix.Extension
		wantErr string
	}{
		{"no extension", nil, "no such extension"},
		{"twice", []pkix.Extension{ext, ext}, "appears twice"},
		{"critical", []pkix.Extension{{Id: ext.Id, Critical: true, Value: ext.Value}}, "critical"},
		{"not a CMW", []pkix.Extension{{Id: ext.Id, Value: []byte{4, 1, 0}}}, "id-pe-cmw"},
		{"other media type", []pkix.Extension{mustExt(t, "application/jwt", 8)}, `media type "application/jwt"`},
		{"evidence, not results", []pkix.Extension{mustExt(t, challenge.MediaTypeEAR, cmw.Evidence)}, "indicator 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := challenge.EARFromCertificate(&x509.Certificate{Extensions: tc.exts})
			checkErr(t, err, tc.wantErr)
		})
	}
}

func mustExt(t *testing.T, mt string, ind cmw.Indicator) pkix.Extension {
	t.Helper()
	m, err := cmw.NewMonad(mt, []byte("x.y.z"), ind)
	if err != nil {
		t.Fatal(err)
	}
	e, err := m.EncodeX509Extension(cmw.ChoiceCbor, false)
	if err != nil {
		t.Fatal(err)
	}
	return *e
}
