package caplugin_test

import (
	"context"
	"encoding/pem"
	"testing"
	"time"

	"go.step.sm/crypto/pemutil"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tpm"
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
			ca := newTestCA(t, caSetup{plugin: func(_ *testing.T, _ string, c *caplugin.Config) {
				c.MaxCertificateLifetime.Duration = 2 * time.Hour // below the provisioner's 24h
			}})
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
			if lifetime := chain[0].NotAfter.Sub(chain[0].NotBefore); lifetime != 2*time.Hour {
				t.Errorf("certificate lifetime %s, want capped at the configured 2h", lifetime)
			}
		})
	}
}

// TestIssuanceTPM is TestIssuance with the TPM simulator: the development
// policy trusts the simulator's AK and its PCR values.
func TestIssuanceTPM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dev, err := tpm.OpenSimulator()
	if err != nil {
		if !cgoEnabled {
			t.Skipf("TPM simulator: %v", err)
		}
		t.Fatal(err)
	}
	defer dev.Close()
	att, err := tpm.NewAttester(dev, tpm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	// The reference values are what this simulator quotes.
	ev, err := att.Attest(ctx, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	q, err := tpm.ParseQuote(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	akPEM, err := pemutil.Serialize(att.AKPublic())
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t, caSetup{dev: func(d *caplugin.DevSetup) {
		d.TPMAKPublicKeysPEM = pem.EncodeToMemory(akPEM)
		d.TPMPCRs = map[string]map[int][]byte{tpm.BankSHA256.String(): q.PCRs[tpm.BankSHA256]}
	}})
	cl := ca.client(ctx)
	o := newAttestedOrder(ctx, t, cl, "vm-tpm")
	ans := answer(ctx, t, cl, att, o.chal, o.key.Public())
	ch, err := accept(ctx, cl, o.chal, ans.Payload)
	if err != nil || ch.Status != "valid" {
		t.Fatalf("accept: %v, %+v", err, ch)
	}
	chain, err := finalize(ctx, cl, o.order, o.key)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	ca.checkAttestedCertificate(t, chain, ans, o.key, "vm-tpm", "tpm")
}

// TestIssuanceVeraisonMode runs the exchange with the CA configured for a
// Veraison deployment: it sends the bare platform evidence with nonce D and
// checks the kc binding itself. attest-acme's verifier service, which speaks
// the same API and appraises bare evidence too, stands in for Veraison.
func TestIssuanceVeraisonMode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var svc *gatedService
	ca := newTestCA(t, caSetup{plugin: remoteVerifier(&svc, caplugin.VerifierVeraison, 5*time.Second)})
	cl := ca.client(ctx)
	o := newAttestedOrder(ctx, t, cl, "vm-1")
	ans := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{}), o.chal, o.key.Public())
	ch, err := accept(ctx, cl, o.chal, ans.Payload)
	if err != nil || ch.Status != "valid" {
		t.Fatalf("accept: %v, %+v", err, ch)
	}
	chain, err := finalize(ctx, cl, o.order, o.key)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	ca.checkCertificate(t, chain, ans, o.key, "vm-1", "sev-snp", true)

	// A bundle whose kc names another key than the one the platform
	// evidence was made for cannot pass: D = H(kc) is the session nonce.
	o2 := newAttestedOrder(ctx, t, cl, "vm-1")
	good := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{}), o2.chal, o2.key.Public())
	forged := answer(ctx, t, cl, newSNP(t, sim.SNPOptions{}), o2.chal, o.key.Public())
	bundle, err := (evidence.Bundle{KC: forged.KC, Platform: good.Evidence}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	attObj, err := challenge.EncodeAttObj(bundle)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := challenge.EncodePayload(attObj)
	if err != nil {
		t.Fatal(err)
	}
	ch, err = accept(ctx, cl, o2.chal, payload)
	wantInvalid(t, ch, err, urnBadAttestation, "REPORT_DATA is")
}
