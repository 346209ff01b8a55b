package load

import (
	"context"
	"testing"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/attest-acme/attest-acme/tests/bench/rig"
	"github.com/attest-acme/attest-acme/tests/internal/harness"
)

// TestLoad runs loadIssuances attested issuances over loadClients
// concurrent clients (one account each) against one CA: every client has a
// simulated SEV-SNP guest of its own, except every fourth, which quotes with
// the TPM simulator (one per process, shared) when cgo is on. Nothing may
// fail; every certificate must be for its attested key, with an EAR naming
// that key; serials are unique; and the CA must have stored exactly the
// certificates the clients received, all of them extended with an EAR.
func TestLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	var tpmAtt *tpm.Attester
	var tpmRef *rig.TPMReference
	if dev, err := tpm.OpenSimulator(); err == nil {
		defer dev.Close()
		if tpmAtt, err = tpm.NewAttester(dev, tpm.Config{}); err != nil {
			t.Fatal(err)
		}
		defer tpmAtt.Close()
		if tpmRef, err = rig.ReferenceOf(ctx, tpmAtt); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("no TPM simulator (%v): SEV-SNP only", err)
	}
	ca := harness.StartT(t, harness.Options{Dev: func(d *caplugin.DevSetup) {
		if tpmRef != nil {
			d.TPMAKPublicKeysPEM, d.TPMPCRs = tpmRef.AKPEM, tpmRef.PCRs
		}
	}})

	l := &load{clients: newClients(ctx, t, ca.DirectoryURL(), ca.Roots, loadClients), n: loadIssuances}
	l.attesters = newSNPs(t, loadClients)
	if tpmAtt != nil {
		for i := 3; i < loadClients; i += 4 {
			l.attesters[i] = tpmAtt
		}
	}
	l.run(ctx, "load", nil)
	for i, err := range l.errs {
		if i == 10 {
			t.Errorf("... and %d more", len(l.errs)-10)
			break
		}
		t.Error(err)
	}
	if len(l.issued) != loadIssuances {
		t.Fatalf("%d of %d issuances succeeded", len(l.issued), loadIssuances)
	}
	keys, platforms := attestedKeys(t, l.issued, ca.Roots, ca.EARKey)
	t.Logf("%d certificates over %d clients, by platform: %v", len(l.issued), loadClients, platforms)
	if tpmAtt != nil && platforms["tpm"] == 0 {
		t.Error("no certificate was attested by the TPM")
	}
	if platforms["sev-snp"] == 0 {
		t.Error("no certificate was attested by SEV-SNP")
	}

	extended, err := ca.AttestedCertificates()
	if err != nil {
		t.Fatal(err)
	}
	if int(extended) != loadIssuances {
		t.Errorf("the CA extended %v certificates with an EAR, want %d", extended, loadIssuances)
	}
	if err := ca.Close(); err != nil {
		t.Fatal(err)
	}
	stored, err := ca.StoredCertificates()
	if err != nil {
		t.Fatal(err)
	}
	if stored != loadIssuances {
		t.Errorf("the CA stored %d certificates, want exactly the %d the clients received", stored, loadIssuances)
	}
	if n := len(keys); n != loadIssuances {
		t.Errorf("%d distinct attested keys, want %d", n, loadIssuances)
	}
}
