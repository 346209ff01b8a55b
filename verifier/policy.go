package verifier

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/google/go-sev-guest/kds"
	"gopkg.in/yaml.v3"
)

// Policy is the verifier's appraisal policy, a YAML file operators write
// (docs/verifier-policy.md has a complete commented example). Loading checks
// everything that can be checked without evidence: unknown fields, value
// sizes, that files exist and parse. Every error names the file, the line and
// the field.
type Policy struct {
	// ID is ear.appraisal-policy-id in every EAR; defaults to "attest-acme/<file name>".
	ID string `yaml:"id"`
	// EAR configures how results are signed.
	EAR EARConfig `yaml:"ear"`
	// MediaTypes lists the evidence media types accepted; empty means all
	// that this verifier understands.
	MediaTypes []string `yaml:"media_types"`
	// Session configures the HTTP service's challenge-response sessions.
	Session SessionConfig `yaml:"session"`
	// Server configures `attest-acme verifier` (listen address, TLS, metrics).
	Server ServerConfig `yaml:"server"`
	// TrustAnchors per platform.
	TrustAnchors TrustAnchors `yaml:"trust_anchors"`
	// Workloads are the named sets of reference values evidence is matched
	// against, in order; the first match wins.
	Workloads []Workload `yaml:"workloads"`

	// file is the policy's path, for error messages; dir resolves relative paths.
	file, dir string
}

// EARConfig is the "ear" section.
type EARConfig struct {
	// SigningKey is a PEM file with the ES256 (P-256) signing key. If it does
	// not exist it is generated and saved (0600) on first start.
	SigningKey PathValue `yaml:"signing_key"`
}

// SessionConfig is the "session" section.
type SessionConfig struct {
	// Lifetime of a challenge-response session; default 5m.
	Lifetime DurationValue `yaml:"lifetime"`
	// Max is the number of open sessions at once; default 1024.
	Max int `yaml:"max"`
}

// ServerConfig is the "server" section, used by the verifier service.
type ServerConfig struct {
	// Listen is the API's address; default "127.0.0.1:8443".
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files. If both are named and neither
	// exists, a self-signed certificate for TLSHosts is made and saved.
	TLSCert PathValue `yaml:"tls_cert"`
	TLSKey  PathValue `yaml:"tls_key"`
	// TLSHosts are the DNS names and IP addresses of a generated certificate.
	TLSHosts []string `yaml:"tls_hosts"`
	// PlainHTTP serves the API without TLS (loopback tests, a TLS proxy in front).
	PlainHTTP bool `yaml:"plain_http"`
	// MetricsListen serves /metrics on its own address; empty serves it on Listen.
	MetricsListen string `yaml:"metrics_listen"`
}

// TrustAnchors is the "trust_anchors" section.
type TrustAnchors struct {
	// TPM attestation keys: pinned public keys and/or CA certificates.
	TPM TPMAnchors `yaml:"tpm"`
	// SEVSNP roots: PEM files in AMD's cert_chain form (ASK and/or ASVK, then
	// ARK), one per product line; empty means AMD's embedded roots.
	SEVSNP RootsAnchor `yaml:"sev_snp"`
	// TDX roots: PEM CA certificates; empty means Intel's embedded SGX root.
	TDX RootsAnchor `yaml:"tdx"`

	snpRoots []tsm.SNPRoot
	tdxRoots []*x509.Certificate
}

// TPMAnchors trusts TPM attestation keys.
type TPMAnchors struct {
	// AKPublicKeys are PEM files of pinned AK public keys (SPKI).
	AKPublicKeys []PathValue `yaml:"ak_public_keys"`
	// AKRoots are PEM files of CA certificates that AK certificates chain to.
	AKRoots []PathValue `yaml:"ak_roots"`

	keys  []crypto.PublicKey
	roots []*x509.Certificate
}

// RootsAnchor trusts a vendor chain.
type RootsAnchor struct {
	// Roots are PEM files of root (and, for SEV-SNP, ASK) certificates that
	// replace the vendor's embedded roots; for tests and the simulator.
	Roots []PathValue `yaml:"roots"`
}

// Workload is a named set of reference values.
type Workload struct {
	// Name is put into the EAR and matched by the CA's issuance policy.
	Name string `yaml:"name"`
	// TPM reference values, if this workload runs on a TPM platform.
	TPM *TPMReference `yaml:"tpm"`
	// SEVSNP reference values, if this workload runs in an SEV-SNP guest.
	SEVSNP *SNPReference `yaml:"sev_snp"`
	// TDX reference values, if this workload runs in a TD.
	TDX *TDXReference `yaml:"tdx"`

	line int
}

// TPMReference lists PCR values per bank ("sha1", "sha256", "sha384",
// "sha512") and index; every listed PCR must be quoted with that value.
type TPMReference struct {
	PCRs map[string]map[int]HexValue `yaml:"pcrs"`
}

// SNPReference lists SEV-SNP reference values.
type SNPReference struct {
	// Measurement is the launch MEASUREMENT (48 bytes).
	Measurement HexValue `yaml:"measurement"`
	// HostData, if set, must equal HOST_DATA (32 bytes).
	HostData HexValue `yaml:"host_data"`
	// MinTCB, if set, is the component-wise minimum reported TCB.
	MinTCB *SNPTCB `yaml:"min_tcb"`
	// AllowDebug permits a guest whose policy allows debugging.
	AllowDebug bool `yaml:"allow_debug"`
	// MaxVMPL is the highest VMPL accepted; default 0.
	MaxVMPL int `yaml:"max_vmpl"`

	minTCB tsm.SNPTCB
}

// SNPTCB is a TCB version by component (SPL values).
type SNPTCB struct {
	Bootloader uint8 `yaml:"bootloader"`
	TEE        uint8 `yaml:"tee"`
	SNP        uint8 `yaml:"snp"`
	Microcode  uint8 `yaml:"microcode"`
}

// TDXReference lists TDX reference values.
type TDXReference struct {
	// MRTD is the TD's build-time measurement (48 bytes).
	MRTD HexValue `yaml:"mrtd"`
	// RTMRs, by index 0-3, that must match (48 bytes each).
	RTMRs map[int]HexValue `yaml:"rtmrs"`
	// Attributes, if set, must equal TD_ATTRIBUTES (8 bytes).
	Attributes HexValue `yaml:"attributes"`
	// AllowDebug permits a TD with the DEBUG attribute.
	AllowDebug bool `yaml:"allow_debug"`
}

// HexValue is a hex-encoded byte string in the policy file.
type HexValue struct {
	Bytes []byte
	line  int
}

// UnmarshalYAML decodes hex, keeping the line for error messages.
func (h *HexValue) UnmarshalYAML(n *yaml.Node) error {
	h.line = n.Line
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		return fmt.Errorf("line %d: not hex: %v", n.Line, err)
	}
	h.Bytes = b
	return nil
}

// IsSet reports whether the value was given.
func (h HexValue) IsSet() bool { return h.Bytes != nil }

// PathValue is a file path in the policy file, relative to the policy's directory.
type PathValue struct {
	Path string
	line int
}

// UnmarshalYAML decodes a path, keeping the line.
func (p *PathValue) UnmarshalYAML(n *yaml.Node) error {
	p.line = n.Line
	return n.Decode(&p.Path)
}

// DurationValue is a Go duration ("5m") in the policy file.
type DurationValue struct {
	time.Duration
	line int
}

// UnmarshalYAML decodes a duration, keeping the line.
func (d *DurationValue) UnmarshalYAML(n *yaml.Node) error {
	d.line = n.Line
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	d.Duration = v
	return nil
}

// maxPolicySize bounds the policy file.
const maxPolicySize = 1 << 20

// LoadPolicy reads and checks a policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return ParsePolicy(path, b)
}

// ParsePolicy checks a policy given as bytes; name is used in errors and
// relative paths are resolved from its directory.
func ParsePolicy(name string, b []byte) (*Policy, error) {
	if len(b) > maxPolicySize {
		return nil, fmt.Errorf("%s: %d bytes, over the limit of %d", name, len(b), maxPolicySize)
	}
	p := &Policy{file: name, dir: filepath.Dir(name)}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// The workloads' lines, for errors about a workload as a whole. (A custom
	// UnmarshalYAML would lose KnownFields for everything below it.)
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err == nil && len(doc.Content) == 1 {
		m := doc.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == "workloads" {
				for k, item := range m.Content[i+1].Content {
					if k < len(p.Workloads) {
						p.Workloads[k].line = item.Line
					}
				}
			}
		}
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// errAt formats an error about a field at a line of the policy file.
func (p *Policy) errAt(line int, field, format string, args ...any) error {
	return fmt.Errorf("%s: line %d: %s: %s", p.file, line, field, fmt.Sprintf(format, args...))
}

func (p *Policy) path(v PathValue) string {
	if filepath.IsAbs(v.Path) {
		return v.Path
	}
	return filepath.Join(p.dir, v.Path)
}

func (p *Policy) check() error {
	if p.ID == "" {
		p.ID = "attest-acme/" + strings.TrimSuffix(filepath.Base(p.file), filepath.Ext(p.file))
	}
	if p.EAR.SigningKey.Path == "" {
		return fmt.Errorf("%s: ear.signing_key: missing (a PEM file, created on first start if absent)", p.file)
	}
	if p.Session.Lifetime.Duration == 0 {
		p.Session.Lifetime.Duration = 5 * time.Minute
	} else if p.Session.Lifetime.Duration < time.Second || p.Session.Lifetime.Duration > time.Hour {
		return p.errAt(p.Session.Lifetime.line, "session.lifetime", "%s is outside 1s..1h", p.Session.Lifetime.Duration)
	}
	if p.Server.Listen == "" {
		p.Server.Listen = "127.0.0.1:8443"
	}
	if !p.Server.PlainHTTP && (p.Server.TLSCert.Path == "" || p.Server.TLSKey.Path == "") {
		if p.Server.TLSCert.Path != "" || p.Server.TLSKey.Path != "" {
			return fmt.Errorf("%s: server: name both tls_cert and tls_key, or neither", p.file)
		}
	}
	if p.Session.Max == 0 {
		p.Session.Max = 1024
	} else if p.Session.Max < 0 {
		return fmt.Errorf("%s: session.max: %d is negative", p.file, p.Session.Max)
	}
	for _, mt := range p.MediaTypes {
		if !knownMediaType(mt) {
			return fmt.Errorf("%s: media_types: %q is not a media type this verifier appraises", p.file, mt)
		}
	}

	ta := &p.TrustAnchors
	for i, f := range ta.TPM.AKPublicKeys {
		k, err := loadPublicKey(p.path(f))
		if err != nil {
			return p.errAt(f.line, fmt.Sprintf("trust_anchors.tpm.ak_public_keys[%d]", i), "%v", err)
		}
		ta.TPM.keys = append(ta.TPM.keys, k)
	}
	for i, f := range ta.TPM.AKRoots {
		cs, err := loadCertificates(p.path(f))
		if err != nil {
			return p.errAt(f.line, fmt.Sprintf("trust_anchors.tpm.ak_roots[%d]", i), "%v", err)
		}
		ta.TPM.roots = append(ta.TPM.roots, cs...)
	}
	for i, f := range ta.SEVSNP.Roots {
		r, err := readAnchorFile(p.path(f), tsm.ParseSNPRoot)
		if err != nil {
			return p.errAt(f.line, fmt.Sprintf("trust_anchors.sev_snp.roots[%d]", i), "%v", err)
		}
		ta.snpRoots = append(ta.snpRoots, r)
	}
	for i, f := range ta.TDX.Roots {
		cs, err := readAnchorFile(p.path(f), tsm.ParseTDXRoots)
		if err != nil {
			return p.errAt(f.line, fmt.Sprintf("trust_anchors.tdx.roots[%d]", i), "%v", err)
		}
		ta.tdxRoots = append(ta.tdxRoots, cs...)
	}

	seen := map[string]bool{}
	for i := range p.Workloads {
		w := &p.Workloads[i]
		field := fmt.Sprintf("workloads[%d]", i)
		if w.Name == "" {
			return p.errAt(w.line, field+".name", "missing")
		}
		if seen[w.Name] {
			return p.errAt(w.line, field+".name", "%q is used twice", w.Name)
		}
		seen[w.Name] = true
		if w.TPM == nil && w.SEVSNP == nil && w.TDX == nil {
			return p.errAt(w.line, field, "workload %q names no platform (tpm, sev_snp or tdx)", w.Name)
		}
		if err := p.checkWorkload(w, field); err != nil {
			return err
		}
	}
	return nil
}

func (p *Policy) checkWorkload(w *Workload, field string) error {
	size := func(h HexValue, f string, want int, required bool) error {
		if !h.IsSet() {
			if required {
				return p.errAt(w.line, f, "missing")
			}
			return nil
		}
		if len(h.Bytes) != want {
			return p.errAt(h.line, f, "%d bytes, want %d", len(h.Bytes), want)
		}
		return nil
	}
	if t := w.TPM; t != nil {
		if len(t.PCRs) == 0 {
			return p.errAt(w.line, field+".tpm.pcrs", "no PCR values listed")
		}
		for bank, pcrs := range t.PCRs {
			n, ok := pcrBankSizes[bank]
			if !ok {
				return p.errAt(w.line, field+".tpm.pcrs", "bank %q is not one of sha1, sha256, sha384, sha512", bank)
			}
			for idx, v := range pcrs {
				f := fmt.Sprintf("%s.tpm.pcrs.%s.%d", field, bank, idx)
				if idx < 0 || idx > 23 {
					return p.errAt(v.line, f, "PCR index out of 0..23")
				}
				if err := size(v, f, n, true); err != nil {
					return err
				}
			}
		}
	}
	if s := w.SEVSNP; s != nil {
		if err := size(s.Measurement, field+".sev_snp.measurement", 48, true); err != nil {
			return err
		}
		if err := size(s.HostData, field+".sev_snp.host_data", 32, false); err != nil {
			return err
		}
		if t := s.MinTCB; t != nil {
			raw, err := kds.ComposeTCBParts(kds.TCBParts{BlSpl: t.Bootloader, TeeSpl: t.TEE, SnpSpl: t.SNP, UcodeSpl: t.Microcode})
			if err != nil {
				return p.errAt(w.line, field+".sev_snp.min_tcb", "%v", err)
			}
			s.minTCB = tsm.NewSNPTCB(uint64(raw))
		}
		if s.MaxVMPL < 0 || s.MaxVMPL > 3 {
			return p.errAt(w.line, field+".sev_snp.max_vmpl", "%d is outside 0..3", s.MaxVMPL)
		}
	}
	if t := w.TDX; t != nil {
		if err := size(t.MRTD, field+".tdx.mrtd", 48, true); err != nil {
			return err
		}
		for idx, v := range t.RTMRs {
			f := fmt.Sprintf("%s.tdx.rtmrs.%d", field, idx)
			if idx < 0 || idx > 3 {
				return p.errAt(v.line, f, "RTMR index out of 0..3")
			}
			if err := size(v, f, 48, true); err != nil {
				return err
			}
		}
		if err := size(t.Attributes, field+".tdx.attributes", 8, false); err != nil {
			return err
		}
	}
	return nil
}

// pcrBankSizes maps a PCR bank name to its digest size.
var pcrBankSizes = map[string]int{"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}

// maxAnchorFile bounds a trust-anchor file.
const maxAnchorFile = 1 << 20

// readAnchorFile reads a bounded file and parses it with parse.
func readAnchorFile[T any](path string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	b, err := os.ReadFile(path)
	if err != nil {
		return zero, err
	}
	if len(b) > maxAnchorFile {
		return zero, fmt.Errorf("%s: %d bytes, over the limit of %d", path, len(b), maxAnchorFile)
	}
	v, err := parse(b)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func readPEMBlocks(path string) ([]*pem.Block, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > maxAnchorFile {
		return nil, fmt.Errorf("%s: %d bytes, over the limit of %d", path, len(b), maxAnchorFile)
	}
	var blocks []*pem.Block
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		blocks = append(blocks, blk)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	return blocks, nil
}

func loadCertificates(path string) ([]*x509.Certificate, error) {
	blocks, err := readPEMBlocks(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, blk := range blocks {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: PEM block %q, want CERTIFICATE", path, blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func loadPublicKey(path string) (crypto.PublicKey, error) {
	blocks, err := readPEMBlocks(path)
	if err != nil {
		return nil, err
	}
	if len(blocks) != 1 || blocks[0].Type != "PUBLIC KEY" {
		return nil, errors.New(path + ": want exactly one PEM block of type PUBLIC KEY")
	}
	k, err := x509.ParsePKIXPublicKey(blocks[0].Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Path resolves a path of the policy file against the file's directory.
func (p *Policy) Path(v PathValue) string {
	if v.Path == "" {
		return ""
	}
	return p.path(v)
}
