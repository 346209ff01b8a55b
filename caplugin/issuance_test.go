package caplugin_test

import (
	"context"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
)

// TestIssuance runs the whole exchange with an ACME client that is not ours
// (golang.org/x/crypto/acme) against the CA in process, with the real
// embedded verifier and the simulated platforms: order, device-attest-01
// answer in the cmw format, finalize, and a certificate for the attested key
// that carries its EAR.
func TestIssuance(t *testing.T) {
	tdx, err := sim.NewTDX(sim.TDXOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		attester evidence.Attester
		platform string
	}{
		{"sev-snp", newSNP(t, sim.SNPOptions{}), "sev-snp"},
		{"tdx", tdx, "tdx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ca := newTestCA(t, caSetup{})
			cl := ca.client(ctx)
			id := "vm-" + tc.name
			o := newAttestedOrder(ctx, t, cl, id)
			ans := answer(ctx, t, cl, tc.attester, o.chal, o.key.Public())

			ch, err := accept(ctx, cl, o.chal, ans.Payload)
			if err != nil {
				t.Fatalf("accept: %v", err)
			}
			if ch.Status != "valid" {
				t.Fatalf("challenge status %q (error %v), want valid", ch.Status, ch.Error)
			}
			chain, err := finalize(ctx, cl, o.order, o.key)
			if err != nil {
				t.Fatalf("finalize: %v", err)
			}
			res := ca.checkAttestedCertificate(t, chain, ans, o.key, id, tc.platform)
			if res.Workload != "demo" {
				t.Errorf("EAR workload %q, want demo", res.Workload)
			}
			if got := ca.counter("attest_acme_ca_challenges_total", map[string]string{"result": "valid"}); got != 1 {
				t.Errorf("valid challenges counted %v, want 1", got)
			}
			if got := ca.counter("attest_acme_ca_certificates_total", map[string]string{"result": "extended"}); got != 1 {
				t.Errorf("extended certificates counted %v, want 1", got)
			}
			if got := ca.counter("attest_acme_ca_verifier_duration_seconds", map[string]string{"outcome": "ok"}); got != 1 {
				t.Errorf("verifier calls observed %v, want 1", got)
			}
			if lifetime := chain[0].NotAfter.Sub(chain[0].NotBefore); lifetime > 24*time.Hour+time.Minute {
				t.Errorf("certificate lifetime %s, over the configured 24h", lifetime)
			}
		})
	}
}
