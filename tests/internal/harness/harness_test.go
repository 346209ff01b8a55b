package harness_test

import (
	"context"
	"crypto"
	"github.com/attest-acme/attest-acme/challenge"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/tests/internal/harness"
	"github.com/attest-acme/attest-acme/verifier"
)

// TestIssue runs the whole issuance through the harness, with the embedded
// verifier and with the verifier service on loopback, and checks what the
// harness reports: the certificate chains to the CA's root and names the
// attested key, one attested certificate counted, one stored.
func TestIssue(t *testing.T) {
	for _, remote := range []bool{false, true} {
		name := "embedded verifier"
		if remote {
			name = "verifier service"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var opts harness.Options
			if remote {
				opts.Configure = func(s *harness.Setup) error {
					svc, err := harness.ServeDevVerifier(s.Dir, nil)
					if err != nil {
						return err
					}
					t.Cleanup(svc.Close)
					harness.UseRemoteVerifier(s, caplugin.VerifierService, svc.URL, s.EARSigningKeyPath(), 5*time.Second)
					return nil
				}
			}
			ca, err := harness.Start(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer ca.Close()
			snp, err := sim.NewSNP(sim.SNPOptions{})
			if err != nil {
				t.Fatal(err)
			}
			acct, err := ca.NewAccount(ctx)
			if err != nil {
				t.Fatal(err)
			}
			o, err := acct.NewOrder(ctx, "vm-1")
			if err != nil {
				t.Fatal(err)
			}
			chain, ans, err := o.Obtain(ctx, snp)
			if err != nil {
				t.Fatal(err)
			}
			if err := harness.VerifyChain(ca.Roots, chain); err != nil {
				t.Fatal(err)
			}
			if !o.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(chain[0].PublicKey) {
				t.Fatal("the certificate does not name the attested key")
			}
			ear, err := challenge.EARFromCertificate(chain[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := (&verifier.Checker{Key: ca.EARKey, MaxAge: time.Hour}).Check(ear, ans.Nonce, o.Key.Public()); err != nil {
				t.Fatalf("the certificate's EAR: %v", err)
			}
			if n, err := ca.AttestedCertificates(); err != nil || n != 1 {
				t.Fatalf("attested certificates %v (%v), want 1", n, err)
			}
			if _, err := ca.StoredCertificates(); err == nil {
				t.Fatal("StoredCertificates worked on a running CA")
			}
			if err := ca.Close(); err != nil {
				t.Fatal(err)
			}
			if n, err := ca.StoredCertificates(); err != nil || n != 1 {
				t.Fatalf("stored certificates %d (%v), want 1", n, err)
			}
		})
	}
}
