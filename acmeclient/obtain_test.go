package acmeclient_test

import (
	"context"
	"github.com/attest-acme/attest-acme/evidence/tpm/tpmtest"
	"slices"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/acmeclient"
	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tpm"
)

// TestObtainWithEachAttester issues one certificate per attester against
// the real CA (caplugin's development setup, embedded verifier): the TPM
// simulator, swtpm, and the simulated SEV-SNP and TDX guests.
func TestObtainWithEachAttester(t *testing.T) {
	for _, tc := range []struct {
		name     string
		platform string
		// attester returns the attester and what the CA must trust for it
		// (nil for the simulated TEEs, which ca init trusts already).
		attester func(t *testing.T) (evidence.Attester, func(*caplugin.DevSetup))
	}{
		{"tpm-simulator", "tpm", func(t *testing.T) (evidence.Attester, func(*caplugin.DevSetup)) {
			tr, err := tpm.OpenSimulator()
			if err != nil {
				t.Fatalf("OpenSimulator: %v", err)
			}
			t.Cleanup(func() { tr.Close() })
			return tpmAttester(t, tr)
		}},
		{"swtpm", "tpm", func(t *testing.T) (evidence.Attester, func(*caplugin.DevSetup)) {
			cmdAddr, ctrlAddr := tpmtest.StartSwtpm(t)
			tr, err := tpm.OpenTCP(context.Background(), cmdAddr, ctrlAddr)
			if err != nil {
				t.Fatalf("OpenTCP: %v", err)
			}
			t.Cleanup(func() { tr.Close() })
			return tpmAttester(t, tr)
		}},
		{"sim-snp", "sev-snp", func(t *testing.T) (evidence.Attester, func(*caplugin.DevSetup)) {
			g, err := sim.NewSNP(sim.SNPOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return g, nil
		}},
		{"sim-tdx", "tdx", func(t *testing.T) (evidence.Attester, func(*caplugin.DevSetup)) {
			g, err := sim.NewTDX(sim.TDXOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return g, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, trust := tc.attester(t)
			ca := startCA(t, caOptions{dev: trust})
			dir := t.TempDir()
			cl, events := ca.client(t, dir, a)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			id := "vm-" + tc.name
			sv, err := cl.Obtain(ctx, acmeclient.Request{Identifier: id})
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			ca.checkIssued(t, sv, id, tc.platform)
			want := []string{"account", "order", "evidence", "challenge", "finalize", "store"}
			if got := events.stages(); !slices.Equal(got, want) {
				t.Errorf("progress stages %v, want %v", got, want)
			}
			for _, e := range events.events {
				if e.Err != nil {
					t.Errorf("event %s reports an error: %v", e.Stage, e.Err)
				}
			}
		})
	}
}

// tpmAttester makes a TPM attester and the CA setup that trusts its AK and
// expects its PCR values.
func tpmAttester(t *testing.T, tr interface {
	Send([]byte) ([]byte, error)
}) (evidence.Attester, func(*caplugin.DevSetup)) {
	t.Helper()
	a, err := tpm.NewAttester(tr, tpm.Config{})
	if err != nil {
		t.Fatalf("NewAttester: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	akPEM, pcrs := tpmTrust(t, a)
	return a, func(ds *caplugin.DevSetup) {
		ds.SNPRootsPEM, ds.TDXRootsPEM, ds.TDXMRTD = nil, nil, nil
		ds.TPMAKPublicKeysPEM, ds.TPMPCRs = akPEM, pcrs
	}
}

// TestObtainEachKeyType issues a certificate for each key type, each for an
// attested key of that type, and reuses the account after the first.
func TestObtainEachKeyType(t *testing.T) {
	ca := startCA(t, caOptions{})
	g, err := sim.NewSNP(sim.SNPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i, kt := range []acmeclient.KeyType{acmeclient.EC256, acmeclient.EC384, acmeclient.Ed25519, acmeclient.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			cl, events := ca.client(t, dir, g)
			id := "vm-" + string(kt)
			sv, err := cl.Obtain(ctx, acmeclient.Request{Identifier: id, KeyType: kt})
			if err != nil {
				t.Fatalf("Obtain: %v", err)
			}
			if got, err := acmeclient.KeyTypeOf(sv.Leaf().PublicKey); err != nil || got != kt {
				t.Fatalf("certificate key type %q (%v), want %q", got, err, kt)
			}
			if sv.KeyType != kt {
				t.Errorf("resource key type %q, want %q", sv.KeyType, kt)
			}
			ca.checkIssued(t, sv, id, "sev-snp")
			how := events.events[0].Fields["how"]
			if want := map[bool]string{true: "registered", false: "reused"}[i == 0]; how != want {
				t.Errorf("account %s, want %s", how, want)
			}
		})
	}
}
