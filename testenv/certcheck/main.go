// Command certcheck checks a certificate that the compose test environment's
// cvm obtained, from a copy of the client's directory (testenv/e2e.sh copies
// it out of the cvm container with `docker cp`):
//
//   - the chain verifies to the CA's root;
//   - the certificate's PermanentIdentifier is the identifier asked for;
//   - the stored private key is the certificate's key;
//   - the EAR in the certificate's id-pe-cmw extension is the one stored
//     beside it, and it verifies under the verifier's pinned EAR key, names
//     the nonce of the challenge the client answered, is affirming, and its
//     akpub (the attested key) is the certificate's key.
//
// It prints one line per check and exits 1 at the first that fails, naming it.
// It reads the directory through acmeclient.Storage and checks the EAR with
// verifier.Checker, the same code the client and the CA use.
package main

import (
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"github.com/attest-acme/attest-acme/challenge"
	"io"
	"os"
	"slices"
	"time"

	"go.step.sm/crypto/x509util"

	"github.com/attest-acme/attest-acme/acmeclient"
	"github.com/attest-acme/attest-acme/verifier"
)

func main() {
	fs := flag.NewFlagSet("certcheck", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.Dir, "dir", "", "copy of the client's --dir")
	fs.StringVar(&o.Identifier, "identifier", "", "the permanent identifier the certificate is for")
	fs.StringVar(&o.Root, "root", "", "PEM file of the CA's root certificate")
	fs.StringVar(&o.EARKey, "ear-key", "", "the verifier's EAR verification key (PEM public key, certificate or JWK)")
	fs.DurationVar(&o.MaxAge, "max-age", 10*time.Minute, "how old the EAR may be")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if o.Dir == "" || o.Identifier == "" || o.Root == "" || o.EARKey == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: certcheck --dir DIR --identifier ID --root ROOT.pem --ear-key KEY.pem [--max-age 10m]")
		os.Exit(2)
	}
	o.Now = time.Now
	if err := check(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "certcheck: FAIL:", err)
		os.Exit(1)
	}
}

// options are what check needs.
type options struct {
	Dir, Identifier, Root, EARKey string
	MaxAge                        time.Duration
	Now                           func() time.Time
}

// check runs every check in order and reports each on out.
func check(o options, out io.Writer) error {
	sv, err := acmeclient.NewStorage(o.Dir).Load(o.Identifier)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	leaf := sv.Leaf()
	fmt.Fprintf(out, "certificate: serial %x, valid %s to %s (%s)\n", leaf.SerialNumber,
		leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), leaf.NotAfter.Sub(leaf.NotBefore))

	// The chain, to the CA's root.
	rootPEM, err := os.ReadFile(o.Root)
	if err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		return fmt.Errorf("chain: %s holds no PEM certificate", o.Root)
	}
	inter := x509.NewCertPool()
	for _, c := range sv.Chain[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: o.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	path := chains[0]
	fmt.Fprintf(out, "ok chain: verifies to %q through %d intermediate(s)\n", path[len(path)-1].Subject.CommonName, len(path)-2)

	// The identifier.
	sans, err := x509util.ParseSubjectAlternativeNames(leaf)
	if err != nil {
		return fmt.Errorf("identifier: %w", err)
	}
	var ids []string
	for _, p := range sans.PermanentIdentifiers {
		ids = append(ids, p.Identifier)
	}
	if !slices.Contains(ids, o.Identifier) {
		return fmt.Errorf("identifier: the certificate's PermanentIdentifier SANs are %q, want %q", ids, o.Identifier)
	}
	fmt.Fprintf(out, "ok identifier: PermanentIdentifier %s\n", o.Identifier)

	// The key the client keeps.
	if k, ok := sv.Key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(leaf.PublicKey) {
		return errors.New("key: the stored private key is not the certificate's key")
	}
	fmt.Fprintln(out, "ok key: the stored private key is the certificate's key")

	// The EAR the certificate carries.
	token, err := challenge.EARFromCertificate(leaf)
	if err != nil {
		return fmt.Errorf("ear: %w", err)
	}
	if string(token) != string(sv.EAR) {
		return errors.New("ear: the EAR in the certificate's id-pe-cmw extension is not the EAR stored beside it")
	}
	earKey, err := verifier.LoadVerificationKey(o.EARKey)
	if err != nil {
		return fmt.Errorf("ear: %w", err)
	}
	nonce, err := hex.DecodeString(sv.Nonce)
	if err != nil || len(nonce) != 32 {
		return fmt.Errorf("ear: the stored nonce %q is not 32 bytes of hex", sv.Nonce)
	}
	r, err := (&verifier.Checker{Key: earKey, Now: o.Now, MaxAge: o.MaxAge}).Check(token, nonce, leaf.PublicKey)
	if err != nil {
		return fmt.Errorf("ear: %w", err)
	}
	fmt.Fprintf(out, "ok ear: id-pe-cmw EAR verifies under the verifier's key; eat_nonce is the challenge's; %s %s, workload %q, policy %q\n",
		r.Platform, r.Status, r.Workload, r.PolicyID)
	// Check already compared them; say it on its own line, as it is the point.
	if k, ok := r.Key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(leaf.PublicKey) {
		return errors.New("akpub: the EAR's attested key is not the certificate's key")
	}
	fmt.Fprintln(out, "ok akpub: the attested key (EAR akpub) is the certificate's key")
	return nil
}
