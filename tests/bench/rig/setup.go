package rig

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"go.step.sm/crypto/pemutil"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/attest-acme/attest-acme/verifier"
)

// Databases step-ca offers that the rig sets up (ca.json "db" type).
const (
	BBolt    = "bbolt"
	BadgerV2 = "badgerv2"
)

// ModuleRoot returns the directory of the attest-acme go.mod, searching up
// from the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && containsModule(b) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("rig: no go.mod of github.com/attest-acme/attest-acme above the working directory")
		}
		dir = parent
	}
}

func containsModule(gomod []byte) bool {
	for line := range bytes.Lines(gomod) {
		if string(bytes.TrimSpace(line)) == "module github.com/attest-acme/attest-acme" {
			return true
		}
	}
	return false
}

// BuildBinary builds cmd/attest-acme into out with `go build` (race adds
// -race), from the module at root.
func BuildBinary(ctx context.Context, root, out string, race bool) error {
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/attest-acme")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("rig: go %v: %w\n%s", args, err, b)
	}
	return nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// TPMReference is what a verifier policy needs to trust a TPM: the AK's
// public key (PEM) and the PCR values it quotes (SHA-256 bank).
type TPMReference struct {
	AKPEM []byte
	PCRs  map[string]map[int][]byte
}

// ReferenceOf quotes once with att to learn its PCR values, and returns them
// with its AK.
func ReferenceOf(ctx context.Context, att *tpm.Attester) (*TPMReference, error) {
	ev, err := att.Attest(ctx, make([]byte, 32))
	if err != nil {
		return nil, fmt.Errorf("rig: TPM reference quote: %w", err)
	}
	q, err := tpm.ParseQuote(ev.Data)
	if err != nil {
		return nil, fmt.Errorf("rig: TPM reference quote: %w", err)
	}
	blk, err := pemutil.Serialize(att.AKPublic())
	if err != nil {
		return nil, fmt.Errorf("rig: TPM AK: %w", err)
	}
	return &TPMReference{
		AKPEM: pem.EncodeToMemory(blk),
		PCRs:  map[string]map[int][]byte{tpm.BankSHA256.String(): q.PCRs[tpm.BankSHA256]},
	}, nil
}

// CAOptions describe the development CA InitCA writes.
type CAOptions struct {
	// Dir receives the CA; it must not hold one yet.
	Dir string
	// DB is the database type: BBolt (default) or BadgerV2.
	DB string
	// Port is the CA's HTTPS port on 127.0.0.1; 0 picks a free one.
	Port int
	// TPM, if set, is trusted besides the simulated SEV-SNP and TDX anchors.
	TPM *TPMReference
	// VerifierPort, if not 0, makes the CA call attest-acme's verifier
	// service at http://127.0.0.1:VerifierPort (caplugin's "service" type)
	// instead of the embedded verifier; CA.VerifierPolicy is then the
	// service's policy, listening there.
	VerifierPort int
	// VerifierTimeout bounds one appraisal; 0 means caplugin's default.
	VerifierTimeout string
	// NoRequestLog drops ca.json's "logger" (step-ca's request log).
	NoRequestLog bool
	// MetricsPort, if not 0, serves the CA's Prometheus metrics on
	// 127.0.0.1:MetricsPort (CA.MetricsURL).
	MetricsPort int
}

// CA is a development CA on disk.
type CA struct {
	// Dir holds it; Config is its ca.json.
	Dir, Config string
	// DB is its database type.
	DB string
	// Address is where it listens (127.0.0.1:port).
	Address string
	// DirectoryURL is the ACME directory of its provisioner.
	DirectoryURL string
	// Roots holds its root certificate.
	Roots *x509.CertPool
	// EARKey verifies the EARs its verifier signs.
	EARKey *ecdsa.PublicKey
	// VerifierPolicy is the verifier service's policy (when VerifierPort
	// was set) and VerifierURL its address.
	VerifierPolicy, VerifierURL string
	// MetricsURL is the CA's /metrics (when MetricsPort was set).
	MetricsURL string
}

// InitCA writes a development CA: caplugin.InitDev with the simulated
// platforms' anchors (and the TPM's, if given), then ca.json's database and
// verifier as o says.
func InitCA(o CAOptions) (*CA, error) {
	if o.DB == "" {
		o.DB = BBolt
	}
	if o.DB != BBolt && o.DB != BadgerV2 {
		return nil, fmt.Errorf("rig: database %q is not %q or %q", o.DB, BBolt, BadgerV2)
	}
	if o.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		o.Port = p
	}
	snpRoots, err := sim.SNPTestRootsPEM()
	if err != nil {
		return nil, err
	}
	tdxRoot, err := sim.TDXTestRootPEM()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port))
	ds := caplugin.DevSetup{
		Dir:         o.Dir,
		Address:     addr,
		DNSNames:    []string{"127.0.0.1"},
		SNPRootsPEM: snpRoots,
		TDXRootsPEM: tdxRoot,
		TDXMRTD:     sim.DefaultTDXMRTD(),
	}
	if o.MetricsPort != 0 {
		ds.MetricsAddress = net.JoinHostPort("127.0.0.1", strconv.Itoa(o.MetricsPort))
	}
	if o.TPM != nil {
		ds.TPMAKPublicKeysPEM = o.TPM.AKPEM
		ds.TPMPCRs = o.TPM.PCRs
	}
	files, err := caplugin.InitDev(ds)
	if err != nil {
		return nil, fmt.Errorf("rig: %w", err)
	}
	ca := &CA{Dir: o.Dir, Config: files.CAConfig, DB: o.DB, Address: addr, DirectoryURL: files.DirectoryURL}
	if ds.MetricsAddress != "" {
		ca.MetricsURL = "http://" + ds.MetricsAddress + "/metrics"
	}

	b, err := os.ReadFile(files.CAConfig)
	if err != nil {
		return nil, err
	}
	var top map[string]any
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("rig: %s: %w", files.CAConfig, err)
	}
	source := filepath.Join(o.Dir, "db", "ca.db")
	if o.DB == BadgerV2 {
		source = filepath.Join(o.Dir, "db", "badger")
	}
	top["db"] = map[string]any{"type": o.DB, "dataSource": source}
	if o.NoRequestLog {
		delete(top, "logger")
	}
	plugin, ok := top[caplugin.ConfigKey].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("rig: %s has no %s section", files.CAConfig, caplugin.ConfigKey)
	}
	v := plugin["verifier"].(map[string]any)
	if o.VerifierTimeout != "" {
		v["timeout"] = o.VerifierTimeout
	}
	if o.VerifierPort != 0 {
		ca.VerifierURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(o.VerifierPort))
		ca.VerifierPolicy = filepath.Join(o.Dir, "verifier-service.yaml")
		pol, err := os.ReadFile(files.VerifierPolicy)
		if err != nil {
			return nil, err
		}
		// The same policy and EAR key, served over plain HTTP on loopback.
		pol = fmt.Appendf(pol, "server:\n  listen: %q\n  plain_http: true\n", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.VerifierPort)))
		if err := os.WriteFile(ca.VerifierPolicy, pol, 0o644); err != nil {
			return nil, err
		}
		if _, err := verifier.LoadPolicy(ca.VerifierPolicy); err != nil {
			return nil, fmt.Errorf("rig: the verifier service's policy: %w", err)
		}
		delete(v, "policy")
		v["type"] = caplugin.VerifierService
		v["url"] = ca.VerifierURL
		v["earKey"] = "secrets/ear_signing_key.pem"
	}
	out, err := json.MarshalIndent(top, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(files.CAConfig, append(out, '\n'), 0o600); err != nil {
		return nil, err
	}
	if _, _, err := caplugin.LoadConfig(files.CAConfig); err != nil {
		return nil, fmt.Errorf("rig: the ca.json written does not load: %w", err)
	}

	rootPEM, err := os.ReadFile(files.Root)
	if err != nil {
		return nil, err
	}
	ca.Roots = x509.NewCertPool()
	if !ca.Roots.AppendCertsFromPEM(rootPEM) {
		return nil, fmt.Errorf("rig: %s holds no certificate", files.Root)
	}
	if ca.EARKey, err = verifier.LoadVerificationKey(filepath.Join(o.Dir, "secrets", "ear_signing_key.pem")); err != nil {
		return nil, err
	}
	return ca, nil
}
