package caplugin

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/smallstep/certificates/authority/config"
	"github.com/smallstep/certificates/authority/provisioner"
	"github.com/smallstep/certificates/db"
	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/pemutil"
	"go.step.sm/crypto/x509util"

	"github.com/attest-acme/attest-acme/verifier"
)

// DevSetup describes the development CA that InitDev writes: a root and an
// intermediate, ca.json with an ACME provisioner offering device-attest-01
// and http-01, a bbolt database, the plugin's section using the embedded
// verifier, and a verifier policy that trusts a simulated platform's test
// anchors with one sample workload.
//
// The simulated platform's anchors and reference values are passed in (the
// command takes them from evidence/sim); this package does not import it.
type DevSetup struct {
	// Dir receives everything; it must not hold a ca.json yet.
	Dir string
	// Address is where the CA listens; default "127.0.0.1:8443".
	Address string
	// DNSNames are the CA's own names; default localhost and 127.0.0.1.
	DNSNames []string
	// MetricsAddress is the plugin's metrics address; empty means none.
	MetricsAddress string
	// Provisioner names the ACME provisioner; default "attest".
	Provisioner string
	// Workload names the sample workload; default "demo".
	Workload string
	// PermanentIdentifiers and DNSNamesAllowed are the sample workload's
	// issuance rule; defaults "*" and "*.localhost".
	PermanentIdentifiers []string
	DNSNamesAllowed      []string
	// SNPRootsPEM are the SEV-SNP test roots to trust (ASK, ASVK, ARK), and
	// SNPMeasurement the workload's MEASUREMENT (48 bytes). Optional.
	SNPRootsPEM    []byte
	SNPMeasurement []byte
	// TDXRootsPEM is the TDX test root to trust, and TDXMRTD the workload's
	// MRTD (48 bytes). Optional.
	TDXRootsPEM []byte
	TDXMRTD     []byte
	// TPMAKPublicKeysPEM are TPM attestation keys to trust, and TPMPCRs the
	// workload's PCR values by bank name and index. Optional.
	TPMAKPublicKeysPEM []byte
	TPMPCRs            map[string]map[int][]byte
	// Now is the clock for the certificates' validity; nil means time.Now.
	Now func() time.Time
}

// DevFiles names what InitDev wrote.
type DevFiles struct {
	// CAConfig is ca.json; `attest-acme ca --config` serves it.
	CAConfig string
	// Root is the root certificate clients must trust.
	Root string
	// VerifierPolicy is the embedded verifier's policy file.
	VerifierPolicy string
	// DirectoryURL is the ACME directory of the provisioner.
	DirectoryURL string
}

// InitDev writes a working development CA into s.Dir in one step.
func InitDev(s DevSetup) (*DevFiles, error) {
	if s.Dir == "" {
		return nil, errors.New("ca init: no directory given")
	}
	if len(s.SNPRootsPEM) == 0 && len(s.TDXRootsPEM) == 0 && len(s.TPMAKPublicKeysPEM) == 0 {
		return nil, errors.New("ca init: no platform trust anchors given (SEV-SNP, TDX or TPM)")
	}
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("ca init: %w", err)
	}
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&s.Address, "127.0.0.1:8443")
	def(&s.Provisioner, "attest")
	def(&s.Workload, "demo")
	if len(s.DNSNames) == 0 {
		s.DNSNames = []string{"localhost", "127.0.0.1"}
	}
	if len(s.PermanentIdentifiers) == 0 {
		s.PermanentIdentifiers = []string{"*"}
	}
	if len(s.DNSNamesAllowed) == 0 {
		s.DNSNamesAllowed = []string{"*.localhost"}
	}
	if s.Now == nil {
		s.Now = time.Now
	}

	files := &DevFiles{
		CAConfig:       filepath.Join(dir, "ca.json"),
		Root:           filepath.Join(dir, "certs", "root_ca.crt"),
		VerifierPolicy: filepath.Join(dir, "verifier-policy.yaml"),
		DirectoryURL:   "https://" + hostPort(s.DNSNames[0], s.Address) + "/acme/" + s.Provisioner + "/directory",
	}
	if _, err := os.Stat(files.CAConfig); err == nil {
		return nil, fmt.Errorf("ca init: %s exists; refusing to overwrite a CA", files.CAConfig)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("ca init: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "certs"), filepath.Join(dir, "secrets"), filepath.Join(dir, "db")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("ca init: %w", err)
		}
	}

	interCrt := filepath.Join(dir, "certs", "intermediate_ca.crt")
	interKey := filepath.Join(dir, "secrets", "intermediate_ca_key")
	if err := writePKI(s.Now(), files.Root, filepath.Join(dir, "secrets", "root_ca_key"), interCrt, interKey); err != nil {
		return nil, fmt.Errorf("ca init: %w", err)
	}

	// The verifier policy, its anchors and its EAR key.
	earKey := filepath.Join(dir, "secrets", "ear_signing_key.pem")
	if _, _, err := verifier.LoadOrCreateSigningKey(earKey); err != nil {
		return nil, fmt.Errorf("ca init: %w", err)
	}
	// Paths in the policy are relative to its directory, so the directory can move.
	pd := policyData{ID: "attest-acme/dev", SigningKey: "secrets/ear_signing_key.pem", Workload: s.Workload}
	anchor := func(name string, b []byte) (string, error) {
		if len(b) == 0 {
			return "", nil
		}
		return "certs/" + name, os.WriteFile(filepath.Join(dir, "certs", name), b, 0o644)
	}
	if pd.SNPRoots, err = anchor("sev_snp_test_roots.pem", s.SNPRootsPEM); err != nil {
		return nil, fmt.Errorf("ca init: %w", err)
	}
	if pd.TDXRoots, err = anchor("tdx_test_root.pem", s.TDXRootsPEM); err != nil {
		return nil, fmt.Errorf("ca init: %w", err)
	}
	if pd.TPMAKs, err = anchor("tpm_ak_public_keys.pem", s.TPMAKPublicKeysPEM); err != nil {
		return nil, fmt.Errorf("ca init: %w", err)
	}
	if pd.SNPRoots != "" {
		pd.SNPMeasurement = hexOrZero(s.SNPMeasurement, 48)
	}
	if pd.TDXRoots != "" {
		pd.TDXMRTD = hexOrZero(s.TDXMRTD, 48)
	}
	if pd.TPMAKs != "" {
		if len(s.TPMPCRs) == 0 {
			return nil, errors.New("ca init: TPM attestation keys given without reference PCR values")
		}
		pd.TPMPCRs = map[string]map[int]string{}
		for bank, m := range s.TPMPCRs {
			pd.TPMPCRs[bank] = map[int]string{}
			for i, v := range m {
				pd.TPMPCRs[bank][i] = hex.EncodeToString(v)
			}
		}
	}
	var pol bytes.Buffer
	if err := policyTemplate.Execute(&pol, pd); err != nil {
		return nil, fmt.Errorf("ca init: verifier policy: %w", err)
	}
	if err := os.WriteFile(files.VerifierPolicy, pol.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("ca init: %w", err)
	}
	// Fail here, not at the first start, if the policy format moved on.
	if _, err := verifier.LoadPolicy(files.VerifierPolicy); err != nil {
		return nil, fmt.Errorf("ca init: the verifier policy written does not load: %w", err)
	}

	caCfg := &config.Config{
		Root:             []string{files.Root},
		IntermediateCert: interCrt,
		IntermediateKey:  interKey,
		Address:          s.Address,
		DNSNames:         s.DNSNames,
		DB:               &db.Config{Type: "bbolt", DataSource: filepath.Join(dir, "db", "ca.db")},
		Logger:           json.RawMessage(`{"format": "text"}`),
		AuthorityConfig: &config.AuthConfig{
			Provisioners: provisioner.List{&provisioner.ACME{
				Type: provisioner.TypeACME.String(),
				Name: s.Provisioner,
				// "cmw" is not listed in attestationFormats: step-ca rejects
				// formats it does not know. The plugin handles it.
				Challenges: []provisioner.ACMEChallenge{provisioner.DEVICE_ATTEST_01, provisioner.HTTP_01},
			}},
		},
		TLS: &config.DefaultTLSOptions,
	}
	pc := Config{
		Verifier:               VerifierConfig{Type: VerifierEmbedded, Policy: "verifier-policy.yaml", Timeout: Duration{DefaultVerifierTimeout}},
		AcceptStatuses:         []string{"affirming"},
		Issuance:               []IssuanceRule{{Workload: s.Workload, PermanentIdentifiers: s.PermanentIdentifiers, DNSNames: s.DNSNamesAllowed}},
		MaxCertificateLifetime: Duration{DefaultMaxCertificateLifetime},
		MetricsAddress:         s.MetricsAddress,
	}
	out, err := caJSON(caCfg, &pc)
	if err != nil {
		return nil, fmt.Errorf("ca init: %w", err)
	}
	if err := os.WriteFile(files.CAConfig, out, 0o600); err != nil {
		return nil, fmt.Errorf("ca init: %w", err)
	}
	// Check what was written the way `ca --config` will read it.
	if _, _, err := LoadConfig(files.CAConfig); err != nil {
		return nil, fmt.Errorf("ca init: the ca.json written does not load: %w", err)
	}
	return files, nil
}

// caJSON writes step-ca's configuration with the plugin's section added.
func caJSON(caCfg *config.Config, pc *Config) ([]byte, error) {
	b, err := json.Marshal(caCfg)
	if err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, err
	}
	if top[ConfigKey], err = json.Marshal(pc); err != nil {
		return nil, err
	}
	b, err = json.Marshal(top)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// writePKI makes a root and an intermediate (P-256, ten years) with
// go.step.sm/crypto, without step's pki package (which reads STEPPATH).
func writePKI(now time.Time, rootCrt, rootKey, interCrt, interKey string) error {
	mk := func(name, tmpl string, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer, error) {
		signer, err := keyutil.GenerateDefaultSigner()
		if err != nil {
			return nil, nil, err
		}
		cr, err := x509util.CreateCertificateRequest(name, nil, signer)
		if err != nil {
			return nil, nil, err
		}
		c, err := x509util.NewCertificate(cr, x509util.WithTemplate(tmpl, x509util.CreateTemplateData(name, nil)))
		if err != nil {
			return nil, nil, err
		}
		t := c.GetCertificate()
		t.NotBefore, t.NotAfter = now.Add(-time.Minute), now.Add(10*365*24*time.Hour)
		if parent == nil {
			parent, parentKey = t, signer
		}
		crt, err := x509util.CreateCertificate(t, parent, signer.Public(), parentKey)
		if err != nil {
			return nil, nil, err
		}
		return crt, signer, nil
	}
	root, rk, err := mk("attest-acme development Root CA", x509util.DefaultRootTemplate, nil, nil)
	if err != nil {
		return fmt.Errorf("root certificate: %w", err)
	}
	inter, ik, err := mk("attest-acme development Intermediate CA", x509util.DefaultIntermediateTemplate, root, rk)
	if err != nil {
		return fmt.Errorf("intermediate certificate: %w", err)
	}
	for _, f := range []struct {
		path string
		v    any
		perm os.FileMode
	}{{rootCrt, root, 0o644}, {rootKey, rk, 0o600}, {interCrt, inter, 0o644}, {interKey, ik, 0o600}} {
		blk, err := pemutil.Serialize(f.v)
		if err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		if err := os.WriteFile(f.path, pem.EncodeToMemory(blk), f.perm); err != nil {
			return err
		}
	}
	return nil
}

func hostPort(host, address string) string {
	if i := strings.LastIndex(address, ":"); i >= 0 && address[i+1:] != "443" {
		return host + address[i:]
	}
	return host
}

func hexOrZero(b []byte, n int) string {
	if b == nil {
		b = make([]byte, n)
	}
	return hex.EncodeToString(b)
}

// policyData fills policyTemplate.
type policyData struct {
	ID, SigningKey, Workload string
	SNPRoots, SNPMeasurement string
	TDXRoots, TDXMRTD        string
	TPMAKs                   string
	TPMPCRs                  map[string]map[int]string
}

// policyTemplate is the verifier policy of the development setup
// (verifier/policy.go has the format).
var policyTemplate = template.Must(template.New("policy").Parse(`# Verifier policy of an attest-acme development CA (attest-acme ca init).
# It trusts the SIMULATED platforms' test anchors: their keys are public,
# so evidence under them proves nothing outside tests and demos.
id: {{.ID}}
ear:
  signing_key: {{.SigningKey}}
trust_anchors:
{{- if .TPMAKs}}
  tpm:
    ak_public_keys: [{{.TPMAKs}}]
{{- end}}
{{- if .SNPRoots}}
  sev_snp:
    roots: [{{.SNPRoots}}]
{{- end}}
{{- if .TDXRoots}}
  tdx:
    roots: [{{.TDXRoots}}]
{{- end}}
workloads:
  - name: {{.Workload}}
{{- if .TPMAKs}}
    tpm:
      pcrs:
{{- range $bank, $m := .TPMPCRs}}
        {{$bank}}:
{{- range $i, $v := $m}}
          {{$i}}: "{{$v}}"
{{- end}}
{{- end}}
{{- end}}
{{- if .SNPRoots}}
    sev_snp:
      measurement: "{{.SNPMeasurement}}"
{{- end}}
{{- if .TDXRoots}}
    tdx:
      mrtd: "{{.TDXMRTD}}"
{{- end}}
`))
