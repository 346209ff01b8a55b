package tpm

import (
	"bytes"
	"context"
	"crypto"
	"testing"

	"github.com/attest-acme/attest-acme/evidence"
)

// roundTrip quotes a real kc's D on the TPM that spec names, carries the
// quote through a bundle as a client and a CA would, and appraises it with
// the AK pinned. It returns the AK.
func roundTrip(t *testing.T, spec string) crypto.PublicKey {
	t.Helper()
	tpm, err := Open(context.Background(), spec)
	if err != nil {
		t.Fatalf("Open(%q): %v", spec, err)
	}
	t.Cleanup(func() { tpm.Close() })

	var att evidence.Attester = newAttester(t, tpm, Config{})
	if att.BindingHash() != crypto.SHA256 {
		t.Fatalf("BindingHash is %v, want SHA-256", att.BindingHash())
	}
	kc, _ := newBinding(t)
	ev, err := att.Attest(context.Background(), evidence.Binding(att.BindingHash(), kc))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	bundle, err := evidence.Bundle{KC: kc, Platform: ev}.Marshal()
	if err != nil {
		t.Fatal(err)
	}

	// The appraising side.
	got, err := evidence.ParseBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	h, err := evidence.BindingHashFor(got.Platform.MediaType)
	if err != nil {
		t.Fatal(err)
	}
	ak := att.(*Attester).AKPublic()
	claims, err := pinned(t, ak).Appraise(got.Platform.Data, evidence.Binding(h, got.KC))
	if err != nil {
		t.Fatalf("Appraise: %v", err)
	}
	if !sameKey(claims.AK, ak) {
		t.Fatal("claims name another AK")
	}
	fp, err := AKFingerprint(ak)
	if err != nil || claims.AKFingerprint != fp || len(fp) != 64 {
		t.Fatalf("claims fingerprint %q, want %q (%v)", claims.AKFingerprint, fp, err)
	}
	if claims.AKCertificate != nil {
		t.Fatal("a pinned AK comes with a certificate")
	}
	if len(claims.PCRs) != 1 || len(claims.PCRs[BankSHA256]) != 8 {
		t.Fatalf("claims hold PCRs %v, want sha256:0-7", claims.PCRs)
	}
	for i, v := range claims.PCRs[BankSHA256] {
		if len(v) != 32 {
			t.Fatalf("PCR %d is %d bytes", i, len(v))
		}
	}
	if claims.Clock.Clock == 0 && claims.Clock.ResetCount == 0 && claims.FirmwareVersion == 0 {
		t.Fatal("claims carry no clock and no firmware version")
	}
	return ak
}

func TestRoundTripSimulator(t *testing.T) {
	if !haveSimulator {
		t.Skip("the in-process simulator needs cgo; skipping")
	}
	roundTrip(t, SimulatorSpec)
}

func TestRoundTripSwtpm(t *testing.T) {
	spec := startSwtpm(t)
	// swtpm serves one connection at a time: each subtest closes its own.
	var aks []crypto.PublicKey
	for _, name := range []string{"first connection", "second connection"} {
		t.Run(name, func(t *testing.T) { aks = append(aks, roundTrip(t, spec)) })
	}
	// A new connection recreates the same AK from the template.
	if len(aks) != 2 || !sameKey(aks[0], aks[1]) {
		t.Fatal("the AK changed between two connections to the same swtpm")
	}
}

// TestRoundTripEncodingIsDeterministic checks that the quote map is the
// core deterministic encoding of itself.
func TestRoundTripEncodingIsDeterministic(t *testing.T) {
	f := newFixture(t, Config{})
	var generic map[string]any
	if err := quoteDec.Unmarshal(f.data, &generic); err != nil {
		t.Fatal(err)
	}
	again, err := evidence.DetEncMode().Marshal(generic)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, f.data) {
		t.Fatal("the quote map is not in core deterministic encoding")
	}
}
