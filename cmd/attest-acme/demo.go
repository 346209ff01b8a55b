package main

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/attest-acme/attest-acme/acmeclient"
	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/attest-acme/attest-acme/verifier"
)

const demoUsage = `usage: attest-acme demo [--platform snp|tdx|tpm] [--dir DIR] [--identifier ID] [--key-type TYPE]

Runs the whole flow on this machine, with nothing installed but Go: starts a
CA (step-ca with the cmw format and the embedded verifier) on loopback, lets a
simulated confidential VM obtain a certificate for a key it made, prints what
was attested, and stops. The simulated platforms are signed by TEST chains
that nothing trusts outside this demo.

  --platform snp   simulated AMD SEV-SNP guest (default)
  --platform tdx   simulated Intel TDX guest
  --platform tpm   the TPM simulator (needs a cgo build), or swtpm with --tpm-tcp
`

// runDemo is the "demo" subcommand: CA, verifier and client in one process.
func runDemo(ctx context.Context, e env) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	platform := fs.String("platform", "snp", "simulated platform: snp, tdx or tpm")
	dir := fs.String("dir", "", "directory for the CA and the client's files (default: a new temporary directory, kept)")
	identifier := fs.String("identifier", "demo-cvm-1", "permanent identifier to certify")
	keyType := fs.String("key-type", "ec256", "certificate key type: ec256, ec384, ed25519, rsa2048")
	tpmTCP := fs.String("tpm-tcp", "", "with --platform tpm: swtpm's command port HOST:PORT instead of the simulator")
	if err := fs.Parse(e.args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stderr, demoUsage)
			return nil
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{"demo: unexpected arguments " + strings.Join(fs.Args(), " ")}
	}
	kt, err := acmeclient.ParseKeyType(*keyType)
	if err != nil {
		return usageError{err.Error()}
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "attest-acme-demo-"); err != nil {
			return codedError{exitInternal, err}
		}
	}
	start := time.Now()

	// The simulated CVM, and what the development CA must trust to appraise it.
	setup := caplugin.DevSetup{Dir: filepath.Join(*dir, "ca"), Workload: "demo", PermanentIdentifiers: []string{"*"}}
	var att evidence.Attester
	switch *platform {
	case "snp":
		if setup.SNPRootsPEM, err = sim.SNPTestRootsPEM(); err != nil {
			return err
		}
		setup.SNPMeasurement = demoMeasurement()
		if att, err = sim.NewSNP(sim.SNPOptions{Measurement: setup.SNPMeasurement}); err != nil {
			return err
		}
	case "tdx":
		if setup.TDXRootsPEM, err = sim.TDXTestRootPEM(); err != nil {
			return err
		}
		setup.TDXMRTD = sim.DefaultTDXMRTD()
		if att, err = sim.NewTDX(sim.TDXOptions{}); err != nil {
			return err
		}
	case "tpm":
		a, closeTPM, err := demoTPM(ctx, *tpmTCP, &setup)
		if err != nil {
			return codedError{exitInternal, fmt.Errorf("demo: TPM: %w", err)}
		}
		defer closeTPM()
		att = a
	default:
		return usageError{fmt.Sprintf("demo: --platform %q: want snp, tdx or tpm", *platform)}
	}

	// The CA, on a free loopback port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return codedError{exitInternal, err}
	}
	defer ln.Close()
	setup.Address = ln.Addr().String()
	files, err := caplugin.InitDev(setup)
	if err != nil {
		return codedError{exitInternal, err}
	}
	caCfg, pc, err := caplugin.LoadConfig(files.CAConfig)
	if err != nil {
		return err
	}
	caCfg.Logger = nil // no request log on the demo's terminal
	caLog, err := os.Create(filepath.Join(*dir, "ca.log"))
	if err != nil {
		return codedError{exitInternal, err}
	}
	defer caLog.Close()
	srv, err := caplugin.New(caplugin.Options{CA: caCfg, Plugin: pc, Logger: slog.New(slog.NewTextHandler(caLog, nil))})
	if err != nil {
		return err
	}
	defer srv.Close()
	serveCtx, stopCA := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	defer func() { stopCA(); <-served }()

	fmt.Fprintf(e.stderr, "CA and embedded verifier on https://%s (state in %s)\n", setup.Address, setup.Dir)
	fmt.Fprintf(e.stderr, "simulated %s CVM asks for a certificate for %q:\n", platformName(*platform), *identifier)

	// The client in the CVM.
	roots := x509.NewCertPool()
	for _, c := range srv.Roots() {
		roots.AddCert(c)
	}
	p := &progress{e: e, f: &clientFlags{}}
	cl, err := acmeclient.New(acmeclient.Config{
		DirectoryURL: files.DirectoryURL,
		Storage:      acmeclient.NewStorage(filepath.Join(*dir, "client")),
		Attester:     att,
		HTTPClient:   acmeclient.NewHTTPClient(roots, 0),
		Progress:     p.event,
	})
	if err != nil {
		return err
	}
	sv, err := cl.Obtain(ctx, acmeclient.Request{Identifier: *identifier, KeyType: kt})
	if err != nil {
		return fmt.Errorf("demo: the CVM got no certificate: %w (CA log: %s)", err, caLog.Name())
	}
	earKey, err := verifier.LoadVerificationKey(demoEARKey(files.VerifierPolicy))
	if err != nil {
		return err
	}
	res, err := verifier.Describe(sv.EAR, earKey)
	if err != nil {
		return fmt.Errorf("demo: the certificate's EAR: %w", err)
	}
	printDemoSummary(e.stdout, sv, res, time.Since(start))
	return nil
}

// demoMeasurement is the launch measurement of the demo's SEV-SNP guest.
func demoMeasurement() []byte {
	h := sha256.Sum256([]byte("attest-acme demo guest"))
	return append(h[:], h[:16]...)
}

// demoTPM opens the TPM simulator (or swtpm), makes an attester, and has the
// development CA trust its AK and current PCR 0-7 values.
func demoTPM(ctx context.Context, swtpm string, setup *caplugin.DevSetup) (evidence.Attester, func(), error) {
	spec := tpm.SimulatorSpec
	if swtpm != "" {
		spec = "tcp://" + swtpm
	}
	t, err := tpm.Open(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	a, err := tpm.NewAttester(t, tpm.Config{PCRs: tpm.PCRSelection{tpm.BankSHA256: {0, 1, 2, 3, 4, 5, 6, 7}}})
	if err != nil {
		t.Close()
		return nil, nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(a.AKPublic())
	if err != nil {
		a.Close()
		t.Close()
		return nil, nil, err
	}
	setup.TPMAKPublicKeysPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	// A fresh simulator's PCRs are zero; the demo trusts what it reports now.
	setup.TPMPCRs = map[string]map[int][]byte{"sha256": {}}
	for i := range 8 {
		setup.TPMPCRs["sha256"][i] = make([]byte, 32)
	}
	return a, func() { a.Close(); t.Close() }, nil
}

// demoEARKey finds the EAR signing key the development policy names.
func demoEARKey(policyPath string) string {
	p, err := verifier.LoadPolicy(policyPath)
	if err != nil {
		return policyPath
	}
	return p.Path(p.EAR.SigningKey)
}

func platformName(p string) string {
	return map[string]string{"snp": "AMD SEV-SNP", "tdx": "Intel TDX", "tpm": "TPM 2.0"}[p]
}

func printDemoSummary(w io.Writer, sv *acmeclient.Saved, r *verifier.Result, took time.Duration) {
	leaf := sv.Leaf()
	spki, _ := x509.MarshalPKIXPublicKey(leaf.PublicKey)
	fp := sha256.Sum256(spki)
	tv := r.TrustVector.AsMap()
	names := make([]string, 0, len(tv))
	for k, v := range tv {
		if v != 0 {
			names = append(names, fmt.Sprintf("%s=%d", k, v))
		}
	}
	sort.Strings(names)
	fmt.Fprintf(w, `
certificate issued in %.1fs
  identifier     %s (PermanentIdentifier SAN)
  key            %s, SHA-256(SPKI) %s
  attested       %s submod: %s, workload %q
  trust vector   %s
  EAR key        akpub = certificate key: %v
  validity       %s to %s
  serial         %s
files
  certificate    %s
  key            %s
  EAR            %s
Look inside: attest-acme inspect %s
`, took.Seconds(), sv.Identifier, keyName(leaf.PublicKey), hex.EncodeToString(fp[:]),
		r.Platform, r.Status, r.Workload, strings.Join(names, " "), r.Key != nil && sameKey(r.Key, leaf.PublicKey),
		leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), sv.Serial,
		sv.Paths.Cert, sv.Paths.Key, sv.Paths.EAR, sv.Paths.Cert)
}

func keyName(pub crypto.PublicKey) string {
	if kt, err := acmeclient.KeyTypeOf(pub); err == nil {
		return string(kt)
	}
	return fmt.Sprintf("%T", pub)
}

func sameKey(a, b any) bool {
	k, ok := a.(interface{ Equal(x crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
