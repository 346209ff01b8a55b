// Command gen prepares what the compose test environment's images hold
// besides the binary: the configurations (copied from testenv/config), and
// the keys, certificates and trust anchors they name. testenv/build.sh runs
// it; it writes under testenv/build (git-ignored):
//
//	ca/        -> /etc/attest-acme/ca in the ca image: ca.json, the CA's
//	              root and intermediate, and the verifier's pinned EAR key and
//	              TLS certificate (ca/verifier/)
//	verifier/  -> /etc/attest-acme/verifier in the verifier image: policy.yaml,
//	              the EAR signing key, the TLS key and certificate, the
//	              simulated SEV-SNP platform's test roots
//	cvm/       -> /etc/attest-acme/cvm in the cvm image: the CA's root
//	empty/     an empty directory, the mount point of each named volume
//	host/      never in an image: the development PKI as caplugin.InitDev
//	              wrote it (root key included), for the host's checks
//
// Keys and certificates are made once and kept: running gen again only
// refreshes the configurations, so images rebuilt later still match the CA
// state kept in the ca-state volume. Remove testenv/build (and the volumes,
// `down -v`) to start from scratch.
//
// Before it returns, gen checks what it wrote the way the services will read
// it, and appraises a simulated SEV-SNP guest like the cvm service's with the
// verifier policy: the guest must be matched as a workload that the CA's
// issuance policy allows the cvm's identifier. A policy edit that would make
// the environment fail is reported here, not by a container.
//
// It imports caplugin, verifier, evidence and evidence/sim, like
// cmd/attest-acme, and holds no logic of the protocol.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/verifier"
)

// defaultIdentifier is the cvm service's permanent identifier in
// docker-compose.yml (and testenv/e2e.sh).
const defaultIdentifier = "cvm-1"

func main() {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	cfg := fs.String("config", "testenv/config", "directory of the committed configurations (ca.json, verifier-policy.yaml)")
	out := fs.String("out", "testenv/build", "directory to write into")
	id := fs.String("identifier", defaultIdentifier, "the cvm service's permanent identifier (docker-compose.yml)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "gen: unexpected arguments:", fs.Args())
		os.Exit(2)
	}
	if err := run(context.Background(), options{ConfigDir: *cfg, Out: *out, Identifier: *id, Now: time.Now}, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// options are gen's inputs.
type options struct {
	// ConfigDir holds ca.json and verifier-policy.yaml.
	ConfigDir string
	// Out receives ca/, verifier/, cvm/, empty/ and host/.
	Out string
	// Identifier is the cvm's permanent identifier.
	Identifier string
	// Now is the clock for the PKI and the self-check.
	Now func() time.Time
}

// layout names the files gen writes.
type layout struct {
	caDir, caConfig, caRoot, caInter, caInterKey, caEARKey, caVerifierTLS string
	vDir, vPolicy, vSNPRoots                                              string
	cvmDir, cvmRoot                                                       string
	empty, pki                                                            string
}

func newLayout(out string) layout {
	ca, v, cvm := filepath.Join(out, "ca"), filepath.Join(out, "verifier"), filepath.Join(out, "cvm")
	return layout{
		caDir:         ca,
		caConfig:      filepath.Join(ca, "ca.json"),
		caRoot:        filepath.Join(ca, "certs", "root_ca.crt"),
		caInter:       filepath.Join(ca, "certs", "intermediate_ca.crt"),
		caInterKey:    filepath.Join(ca, "secrets", "intermediate_ca_key"),
		caEARKey:      filepath.Join(ca, "verifier", "ear-verification-key.pem"),
		caVerifierTLS: filepath.Join(ca, "verifier", "tls.crt"),
		vDir:          v,
		vPolicy:       filepath.Join(v, "policy.yaml"),
		vSNPRoots:     filepath.Join(v, "sev_snp_test_roots.pem"),
		cvmDir:        cvm,
		cvmRoot:       filepath.Join(cvm, "root_ca.crt"),
		empty:         filepath.Join(out, "empty"),
		pki:           filepath.Join(out, "host", "pki"),
	}
}

// run writes everything and checks it.
func run(ctx context.Context, o options, log io.Writer) error {
	l := newLayout(o.Out)
	for _, d := range []string{l.caDir, filepath.Join(l.caDir, "certs"), filepath.Join(l.caDir, "secrets"), filepath.Join(l.caDir, "verifier"), l.vDir, l.cvmDir, l.empty} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// Secrets directories are private; the images' COPY keeps the modes.
	if err := os.Chmod(filepath.Join(l.caDir, "secrets"), 0o700); err != nil {
		return err
	}

	// The CA's PKI, made once by caplugin's development setup.
	pkiFiles, err := devPKI(l.pki, o.Now)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		from, to string
		perm     fs.FileMode
	}{
		{pkiFiles.Root, l.caRoot, 0o644},
		{filepath.Join(l.pki, "certs", "intermediate_ca.crt"), l.caInter, 0o644},
		{filepath.Join(l.pki, "secrets", "intermediate_ca_key"), l.caInterKey, 0o600},
		{pkiFiles.Root, l.cvmRoot, 0o644},
	} {
		if err := copyFile(c.from, c.to, c.perm); err != nil {
			return err
		}
	}

	// The verifier: policy, test roots, then its keys (made once).
	if err := copyFile(filepath.Join(o.ConfigDir, "verifier-policy.yaml"), l.vPolicy, 0o644); err != nil {
		return err
	}
	roots, err := sim.SNPTestRootsPEM()
	if err != nil {
		return err
	}
	if err := writeFile(l.vSNPRoots, roots, 0o644); err != nil {
		return err
	}
	pol, err := verifier.LoadPolicy(l.vPolicy)
	if err != nil {
		return err
	}
	if r := pol.TrustAnchors.SEVSNP.Roots; len(r) != 1 || filepath.Clean(pol.Path(r[0])) != filepath.Clean(l.vSNPRoots) {
		return fmt.Errorf("%s: trust_anchors.sev_snp.roots: want exactly [%s], the simulated platform's test roots that gen writes", l.vPolicy, filepath.Base(l.vSNPRoots))
	}
	earKey, created, err := verifier.LoadOrCreateSigningKey(pol.Path(pol.EAR.SigningKey))
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(log, "gen: made the verifier's EAR signing key %s\n", pol.Path(pol.EAR.SigningKey))
	}
	if pol.Server.PlainHTTP || pol.Server.TLSCert.Path == "" || pol.Server.TLSKey.Path == "" {
		return fmt.Errorf("%s: server: the test environment serves the verifier over TLS; name tls_cert and tls_key", l.vPolicy)
	}
	tlsCert, tlsKey := pol.Path(pol.Server.TLSCert), pol.Path(pol.Server.TLSKey)
	if _, err := verifier.LoadOrCreateTLS(tlsCert, tlsKey, pol.Server.TLSHosts); err != nil {
		return err
	}

	// The CA: ca.json, the verifier's pinned EAR key and TLS certificate.
	if err := copyFile(filepath.Join(o.ConfigDir, "ca.json"), l.caConfig, 0o644); err != nil {
		return err
	}
	spki, err := x509.MarshalPKIXPublicKey(&earKey.PublicKey)
	if err != nil {
		return err
	}
	if err := writeFile(l.caEARKey, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0o644); err != nil {
		return err
	}
	if err := copyFile(tlsCert, l.caVerifierTLS, 0o644); err != nil {
		return err
	}

	if err := selfCheck(ctx, l, pol, earKey, o); err != nil {
		return fmt.Errorf("self-check: %w", err)
	}
	fmt.Fprintf(log, "gen: wrote %s (ca, verifier, cvm); a simulated SEV-SNP guest gets %q issued\n", o.Out, o.Identifier)
	return nil
}

// devPKI runs caplugin's development setup once in dir and returns its
// files; later runs reuse what it wrote. Only its root and intermediate are
// used: the CA of the test environment has its own ca.json, with the remote
// verifier.
func devPKI(dir string, now func() time.Time) (*caplugin.DevFiles, error) {
	files := &caplugin.DevFiles{
		CAConfig: filepath.Join(dir, "ca.json"),
		Root:     filepath.Join(dir, "certs", "root_ca.crt"),
	}
	if _, err := os.Stat(files.CAConfig); err == nil {
		return files, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	roots, err := sim.SNPTestRootsPEM()
	if err != nil {
		return nil, err
	}
	return caplugin.InitDev(caplugin.DevSetup{Dir: dir, SNPRootsPEM: roots, Now: now})
}

// selfCheck reads the CA's configuration as `attest-acme ca` will, checks that
// it pins the verifier's key, and runs one appraisal of a simulated guest
// like the cvm's through the verifier policy.
func selfCheck(ctx context.Context, l layout, pol *verifier.Policy, earKey *ecdsa.PrivateKey, o options) error {
	_, pc, err := caplugin.LoadConfig(l.caConfig)
	if err != nil {
		return err
	}
	if pc.Verifier.Type != caplugin.VerifierService {
		return fmt.Errorf("%s: attestAcme.verifier.type is %q; the test environment's CA uses the verifier service (%q)", l.caConfig, pc.Verifier.Type, caplugin.VerifierService)
	}
	pinned, err := verifier.LoadVerificationKey(configPath(l.caDir, pc.Verifier.EARKey))
	if err != nil {
		return fmt.Errorf("%s: attestAcme.verifier.earKey: %w", l.caConfig, err)
	}
	if !pinned.Equal(&earKey.PublicKey) {
		return fmt.Errorf("%s: attestAcme.verifier.earKey is not the verifier's EAR key", l.caConfig)
	}
	if b, err := os.ReadFile(configPath(l.caDir, pc.Verifier.CACerts)); err != nil {
		return fmt.Errorf("%s: attestAcme.verifier.caCerts: %w", l.caConfig, err)
	} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Errorf("%s: attestAcme.verifier.caCerts: no PEM certificate", l.caConfig)
	}
	issuance, err := caplugin.NewIssuancePolicy(pc.Issuance)
	if err != nil {
		return err
	}

	signer, err := verifier.NewSigner(earKey, o.Now)
	if err != nil {
		return err
	}
	app, err := verifier.NewAppraiser(verifier.AppraiserConfig{Policy: pol, Signer: signer, Now: o.Now})
	if err != nil {
		return err
	}
	guest, err := sim.NewSNP(sim.SNPOptions{})
	if err != nil {
		return err
	}
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	kc, err := evidence.NewKC(&certKey.PublicKey, nonce, o.Now())
	if err != nil {
		return err
	}
	platform, err := guest.Attest(ctx, evidence.Binding(guest.BindingHash(), kc))
	if err != nil {
		return err
	}
	bundle, err := evidence.Bundle{KC: kc, Platform: platform}.Marshal()
	if err != nil {
		return err
	}
	token, err := app.Appraise(ctx, evidence.Evidence{MediaType: evidence.MediaTypeBundle, Data: bundle}, nonce)
	if err != nil {
		return fmt.Errorf("the verifier policy %s rejects the simulated SEV-SNP guest: %w", l.vPolicy, err)
	}
	res, err := (&verifier.Checker{Key: pinned, Now: o.Now}).Check(token, nonce, &certKey.PublicKey)
	if err != nil {
		return fmt.Errorf("the verifier policy %s does not affirm the simulated SEV-SNP guest: %w", l.vPolicy, err)
	}
	if err := issuance.AllowsIdentifier(res.Workload, o.Identifier); err != nil {
		return fmt.Errorf("%s: the simulated guest is workload %q: %w", l.caConfig, res.Workload, err)
	}
	return nil
}

// configPath resolves a path of the plugin's section against ca.json's directory.
func configPath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// copyFile copies from to to with mode perm, replacing to.
func copyFile(from, to string, perm fs.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return writeFile(to, b, perm)
}

// writeFile writes b to path with mode perm unless it already holds b, so
// that file times (and the image build cache) change only with the content.
func writeFile(path string, b []byte, perm fs.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return os.Chmod(path, perm)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, perm); err != nil {
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil { // WriteFile's perm is masked by the umask
		return err
	}
	return os.Rename(tmp, path)
}
