package caplugin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/smallstep/certificates/acme"
	"github.com/smallstep/certificates/authority/provisioner"
	"go.step.sm/crypto/jose"

	"github.com/attest-acme/attest-acme/challenge"
)

// pinnedStepCA is the step-ca version whose device-attest-01 path the
// decorator relies on (DESIGN.md decision 1).
const pinnedStepCA = "v0.30.2"

// TestUpstreamStepCAVersionIsPinned fails when go.mod moves step-ca: the
// seam below must then be re-read in acme/challenge.go before the version
// is changed here.
func TestUpstreamStepCAVersionIsPinned(t *testing.T) {
	// The source file of a step-ca function names the module version it was
	// compiled from (".../certificates@v0.30.2/acme/linker.go"), with or
	// without -trimpath.
	file, _ := runtime.FuncForPC(reflect.ValueOf(acme.NewLinker).Pointer()).FileLine(reflect.ValueOf(acme.NewLinker).Pointer())
	const mod = "github.com/smallstep/certificates@"
	i := strings.Index(file, mod)
	if i < 0 {
		t.Fatalf("cannot tell step-ca's version from %q (a replace directive?): re-check the seam by hand", file)
	}
	v, _, _ := strings.Cut(file[i+len(mod):], "/")
	if v != pinnedStepCA {
		t.Fatalf("step-ca is %s, the cmw decorator was written against %s: re-check deviceAttest01Validate "+
			"and storeError in acme/challenge.go, then update pinnedStepCA", v, pinnedStepCA)
	}
}

// TestUpstreamCMWReachesTheDecorator pins the seam: step-ca's own
// Challenge.Validate, given a device-attest-01 answer in the cmw format, must
// end in exactly one UpdateChallenge write that the decorator recognises, and
// write nothing else. Answers in other formats must not be recognised. If a
// step-ca upgrade validates earlier, writes differently or knows "cmw" itself,
// this test fails instead of validation silently stopping.
func TestUpstreamCMWReachesTheDecorator(t *testing.T) {
	jwk, err := jose.GenerateJWK("EC", "P-256", "ES256", "sig", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	pub := jwk.Public()
	cmwAttObj, err := challenge.EncodeAttObj([]byte("bundle bytes: upstream must not look inside"))
	if err != nil {
		t.Fatal(err)
	}
	cmwPayload, err := challenge.EncodePayload(cmwAttObj)
	if err != nil {
		t.Fatal(err)
	}
	otherFmt := func(f string) []byte {
		b, err := cbor.Marshal(map[string]any{"fmt": f, "attStmt": map[string]any{"x": []byte{1}}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := json.Marshal(map[string]string{"attObj": base64.RawURLEncoding.EncodeToString(b)})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	for _, tc := range []struct {
		name       string
		formats    []provisioner.ACMEAttestationFormat
		payload    []byte
		recognised bool
		detail     string // in step-ca's error when not recognised
	}{
		{name: "cmw with the default formats", payload: cmwPayload, recognised: true},
		{name: "cmw with only tpm enabled", formats: []provisioner.ACMEAttestationFormat{provisioner.TPM}, payload: cmwPayload, recognised: true},
		{name: "unknown format keeps step-ca's error", payload: otherFmt("foo"), detail: `unsupported attestation object format "foo"`},
		{name: "tpm format keeps step-ca's error", payload: otherFmt("tpm")},
		{name: "error payload keeps step-ca's error", payload: []byte(`{"error":"no attestation"}`), detail: "payload contained error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var writes []acme.Challenge
			var recognised []bool
			az := &acme.Authorization{ID: "az1", AccountID: "acc1", Token: "tok",
				Identifier: acme.Identifier{Type: acme.PermanentIdentifier, Value: "vm-1"}, Status: acme.StatusPending}
			db := &acme.MockDB{
				MockGetAuthorization: func(context.Context, string) (*acme.Authorization, error) { return az, nil },
				MockUpdateChallenge: func(_ context.Context, ch *acme.Challenge) error {
					writes = append(writes, *ch)
					recognised = append(recognised, isUpstreamCMWRejection(ch))
					return nil
				},
				MockUpdateAuthorization: func(context.Context, *acme.Authorization) error {
					t.Error("step-ca updated the authorization for an answer it cannot validate")
					return nil
				},
			}
			prov := &provisioner.ACME{Type: "ACME", Name: "p",
				Challenges:         []provisioner.ACMEChallenge{provisioner.DEVICE_ATTEST_01},
				AttestationFormats: tc.formats}
			ctx := acme.NewProvisionerContext(context.Background(), prov)
			ch := &acme.Challenge{ID: "ch1", AccountID: "acc1", AuthorizationID: "az1", Value: "vm-1",
				Type: acme.DEVICEATTEST01, Status: acme.StatusPending, Token: "tok"}

			if err := ch.Validate(ctx, db, &pub, tc.payload); err != nil {
				t.Fatalf("step-ca's Validate returned %v; the seam expects it to store its rejection", err)
			}
			if len(writes) != 1 {
				t.Fatalf("step-ca wrote the challenge %d times, the decorator expects exactly one write", len(writes))
			}
			if recognised[0] != tc.recognised {
				t.Fatalf("decorator recognised the write: %v, want %v (status %q, error %+v)",
					recognised[0], tc.recognised, writes[0].Status, writes[0].Error)
			}
			if tc.detail != "" && (writes[0].Error == nil || !strings.Contains(writes[0].Error.Error(), tc.detail)) {
				t.Fatalf("step-ca's error %+v, want detail containing %q", writes[0].Error, tc.detail)
			}
		})
	}
}
