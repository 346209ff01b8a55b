package adversarial_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-sev-guest/abi"
	"github.com/veraison/cmw"
	cose "github.com/veraison/go-cose"
	"go.step.sm/crypto/x509util"
	xacme "golang.org/x/crypto/acme"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/attest-acme/attest-acme/tests/internal/harness"
)

// Measurements of the embedded group's extra workloads (SEV-SNP MEASUREMENT,
// 48 bytes). The development workload "demo" has an all-zero MEASUREMENT.
var (
	measurementTCB      = bytes.Repeat([]byte{0x7c}, 48) // workload "strict-tcb": minimum TCB snp 8
	measurementDebug    = bytes.Repeat([]byte{0xdb}, 48) // workload "debuggable": allow_debug
	measurementOther    = bytes.Repeat([]byte{0x07}, 48) // workload "other": may have other-* only
	measurementUnlisted = bytes.Repeat([]byte{0x01}, 48) // in no workload
)

// extraWorkloads are appended to the development policy's workload list.
func extraWorkloads() string {
	return fmt.Sprintf(`  - name: strict-tcb
    sev_snp:
      measurement: "%x"
      min_tcb: {bootloader: 0, tee: 0, snp: 8, microcode: 0}
  - name: debuggable
    sev_snp:
      measurement: "%x"
      allow_debug: true
  - name: other
    sev_snp:
      measurement: "%x"
`, measurementTCB, measurementDebug, measurementOther)
}

// newEmbeddedEnv starts the embedded group's CA: the real in-process
// verifier over the development policy plus the workloads above; the
// issuance policy lets "demo", "strict-tcb" and "debuggable" have vm-* (and
// "demo" DNS names under demo.localhost), and "other" only other-*; only
// "affirming" results are accepted.
func newEmbeddedEnv(t *testing.T) *env {
	t.Helper()
	ca := harness.StartT(t, harness.Options{
		Dev: func(d *caplugin.DevSetup) {
			d.PermanentIdentifiers = []string{"vm-*"}
			d.DNSNamesAllowed = []string{"*.demo.localhost"}
		},
		Configure: func(s *harness.Setup) error {
			f, err := os.OpenFile(s.Files.VerifierPolicy, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			if _, err := f.WriteString(extraWorkloads()); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			s.Plugin.AcceptStatuses = []string{"affirming"}
			s.Plugin.Issuance = append(s.Plugin.Issuance,
				caplugin.IssuanceRule{Workload: "strict-tcb", PermanentIdentifiers: []string{"vm-*"}},
				caplugin.IssuanceRule{Workload: "debuggable", PermanentIdentifiers: []string{"vm-*"}},
				caplugin.IssuanceRule{Workload: "other", PermanentIdentifiers: []string{"other-*"}},
			)
			return nil
		},
	})
	return &env{ca: ca, honest: newSNP(t, sim.SNPOptions{})}
}

func newSNP(t *testing.T, o sim.SNPOptions) *sim.SNP {
	t.Helper()
	g, err := sim.NewSNP(o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func newTDX(t *testing.T, o sim.TDXOptions) *sim.TDX {
	t.Helper()
	g, err := sim.NewTDX(o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestAttacksEmbeddedVerifier runs the attacks on the payload, the
// attestation object, the bundle, the kc, the platform evidence, the
// appraisal, the issuance policy and finalize against a CA with the
// embedded verifier. An honest control runs first and last: the same CA
// issues to an honest client, so every refusal below is the attack's.
func TestAttacksEmbeddedVerifier(t *testing.T) {
	e := newEmbeddedEnv(t)
	ctx := testContext(t)
	honestControl(t, e.withAccounts(t, ctx), "vm-control-1")
	run(t, e, embeddedAttacks())
	honestControl(t, e.withAccounts(t, ctx), "vm-control-2")
	csrNamesOutsideTheOrder(t, e)
	checkNothingIssued(t, e.ca, 3)
}

// csrNamesOutsideTheOrder: a CSR for the attested key that also asks for a
// DNS name the order does not have (one the workload's rule would allow) is
// signed, but the certificate carries the permanent-identifier only: step-ca
// builds an attested certificate's SANs from the order, never from the CSR
// (x509util.DefaultAttestedLeafTemplate), so no unvalidated name is
// certified. This issues one certificate; it is not one of the attacks.
func csrNamesOutsideTheOrder(t *testing.T, e *env) {
	t.Run("CSR names outside the order are not certified", func(t *testing.T) {
		ctx := testContext(t)
		e := e.withAccounts(t, ctx)
		o, err := e.alice.NewOrder(ctx, "vm-csr-names")
		if err != nil {
			t.Fatal(err)
		}
		honestValid(t, ctx, e, o)
		if _, err := o.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		chain, err := o.Finalize(ctx, o.Key, "extra.demo.localhost", "admin.demo.localhost")
		if err != nil {
			t.Fatalf("finalize: %v", err)
		}
		leaf := chain[0]
		sans, err := x509util.ParseSubjectAlternativeNames(leaf)
		if err != nil {
			t.Fatal(err)
		}
		if len(leaf.DNSNames) != 0 || len(leaf.IPAddresses) != 0 || len(leaf.URIs) != 0 || len(leaf.EmailAddresses) != 0 ||
			len(sans.PermanentIdentifiers) != 1 || sans.PermanentIdentifiers[0].Identifier != "vm-csr-names" {
			t.Fatalf("certificate names DNS %v, IP %v, URI %v, email %v, permanent-identifiers %+v; want the permanent-identifier vm-csr-names only",
				leaf.DNSNames, leaf.IPAddresses, leaf.URIs, leaf.EmailAddresses, sans.PermanentIdentifiers)
		}
	})
}

// honestControl issues one certificate to an honest client.
func honestControl(t *testing.T, e *env, id string) {
	t.Helper()
	t.Run("honest control "+id, func(t *testing.T) {
		ctx := testContext(t)
		o, err := e.alice.NewOrder(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		chain, _, err := o.Obtain(ctx, e.honest)
		if err != nil {
			t.Fatalf("an honest client is refused: %v", err)
		}
		if err := harness.VerifyChain(e.ca.Roots, chain); err != nil {
			t.Fatal(err)
		}
	})
}

// embeddedAttacks are the attacks of TestAttacksEmbeddedVerifier.
func embeddedAttacks() []attack {
	const (
		decodeBundle = "challenge/decode.go DecodeBundle"
		parseKC      = "evidence/kc.go ParseKC"
		parseBundle  = "evidence/bundle.go ParseBundle"
		parseAttObj  = "challenge/attobj.go ParseAttObj"
		parsePayload = "challenge/payload.go ParsePayload"
		stepCA       = "step-ca acme/challenge.go deviceAttest01Validate"
		checkEAR     = "verifier/ear.go Checker.check (status) after "
		policyID     = "caplugin/policy.go IssuancePolicy.AllowsIdentifier (caplugin/validate.go validator.run)"
	)
	return []attack{
		// Replay and binding.
		{
			name: "valid bundle replayed to another challenge of the same account",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				return validElsewhere(t, ctx, e, e.alice).Payload
			},
			problem: badAttestation, detail: "kc: eat_nonce", stoppedBy: decodeBundle + " (eat_nonce ≠ N of this token)",
		},
		{
			name: "valid bundle replayed to a challenge of another account", mallory: true,
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				return validElsewhere(t, ctx, e, e.alice).Payload
			},
			problem: badAttestation, detail: "kc: eat_nonce", stoppedBy: decodeBundle + " (eat_nonce ≠ N of this account)",
		},
		{
			name: "kc for the keyAuthorization of another challenge (wrong token)",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				other, err := e.alice.NewOrder(ctx, o.Order.Identifiers[0].Value)
				if err != nil {
					t.Fatal(err)
				}
				kc := kcOf(t, honestClaims(t, o.Key.Public(), nonceOf(t, other)))
				return fullPayload(t, ctx, e.honest, kc)
			},
			problem: badAttestation, detail: "kc: eat_nonce", stoppedBy: decodeBundle + " (eat_nonce ≠ N)",
		},
		{
			name: "kc nonce made with another account's key (same token)",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				ka, err := e.mallory.KeyAuthorization(o.Challenge.Token)
				if err != nil {
					t.Fatal(err)
				}
				kc := kcOf(t, honestClaims(t, o.Key.Public(), challenge.Nonce(ka)))
				return fullPayload(t, ctx, e.honest, kc)
			},
			problem: badAttestation, detail: "kc: eat_nonce", stoppedBy: decodeBundle + " (eat_nonce ≠ N)",
		},
		{
			name: "another CVM's evidence with our kc (evidence over another D)",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				ours := kcOf(t, honestClaims(t, o.Key.Public(), nonceOf(t, o)))
				// Another VM of the same workload attests its own kc.
				theirs := kcOf(t, honestClaims(t, newKey(t).Public(), nonceOf(t, o)))
				ev := attestOver(t, ctx, newSNP(t, sim.SNPOptions{ChipID: bytes.Repeat([]byte{9}, 64)}), theirs)
				return payloadOf(t, attObjOf(t, bundleOf(t, ours, ev)))
			},
			problem: badAttestation, detail: "REPORT_DATA is", stoppedBy: "evidence/tsm/snp.go SNPVerifier.Appraise (REPORT_DATA ≠ D = SHA-512(kc))",
		},

		// Finalize.
		{
			name: "kc names key A, CSR for key B", stage: atFinalize,
			finalize: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) error {
				_, err := o.Finalize(ctx, newKey(t))
				return err
			},
			problem: unauthorized, detail: "lacks sufficient authorization", stoppedBy: "step-ca acme/order.go Order.Finalize (CSR key fingerprint ≠ authorization's)",
		},
		{
			name: "new key answered to the already valid challenge, then a CSR for it", stage: atFinalize,
			finalize: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) error {
				k := newKey(t)
				ans, err := o.AnswerFor(ctx, e.honest, k.Public(), time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if ch, err := o.Post(ctx, ans.Payload); err != nil || ch.Status != xacme.StatusValid {
					t.Fatalf("second answer: %v, %+v; want the challenge left valid", err, ch)
				}
				_, err = o.Finalize(ctx, k)
				return err
			},
			problem: unauthorized, detail: "lacks sufficient authorization", stoppedBy: "step-ca acme/challenge.go Challenge.Validate (no revalidation) + acme/order.go Order.Finalize",
		},
		{
			name: "CSR with a Common Name other than the identifier", stage: atFinalize,
			finalize: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) error {
				csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "vm-admin"}}, o.Key)
				if err != nil {
					t.Fatal(err)
				}
				_, err = o.FinalizeCSR(ctx, csr)
				return err
			},
			problem: harness.ProblemBadCSR, detail: "The CSR is unacceptable", stoppedBy: "step-ca acme/order.go Order.Finalize (CN = permanent-identifier)",
		},
		{
			name: "finalize without answering the challenge", stage: atFinalize, unanswered: true,
			finalize: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) error {
				_, err := o.Finalize(ctx, o.Key)
				return err
			},
			problem: orderNotReady, detail: "", stoppedBy: "step-ca acme/order.go Order.Finalize (order not ready)",
		},

		// Platform evidence and appraisal.
		{
			name:    "SEV-SNP debug guest",
			payload: snpPayload(sim.SNPOptions{Policy: abi.SnpPolicy{Debug: true, SMT: true}}),
			problem: badAttestation, detail: "the guest policy allows debugging", stoppedBy: "verifier/appraise.go Appraiser.appraiseSNP (debug) → " + checkEAR + "contraindicated",
		},
		{
			name:    "SEV-SNP reported TCB below the workload's minimum",
			payload: snpPayload(sim.SNPOptions{Measurement: measurementTCB, ReportedTCB: tcb(0, 0, 3, 0)}),
			problem: badAttestation, detail: "is below the minimum", stoppedBy: "verifier/appraise.go Appraiser.appraiseSNP (min_tcb) → " + checkEAR + "contraindicated",
		},
		{
			name:    "SEV-SNP measurement in no workload",
			payload: snpPayload(sim.SNPOptions{Measurement: measurementUnlisted}),
			problem: badAttestation, detail: "no workload matched MEASUREMENT", stoppedBy: "verifier/appraise.go Appraiser.appraiseSNP → " + checkEAR + "contraindicated",
		},
		{
			name:    "SEV-SNP report from VMPL 1, above the workload's maximum 0",
			payload: snpPayload(sim.SNPOptions{VMPL: 1}),
			problem: badAttestation, detail: "report from VMPL 1", stoppedBy: "verifier/appraise.go Appraiser.appraiseSNP (max_vmpl) → " + checkEAR + "contraindicated",
		},
		{
			name:    "EAR status warning (debug allowed by the workload) when only affirming is accepted",
			payload: snpPayload(sim.SNPOptions{Measurement: measurementDebug, Policy: abi.SnpPolicy{Debug: true, SMT: true}}),
			problem: badAttestation, detail: "status is warning", stoppedBy: checkEAR + "warning ∉ acceptStatuses",
		},
		{
			name:    "SEV-SNP report version 1",
			payload: snpPayload(sim.SNPOptions{Version: 1}),
			problem: badAttestation, detail: "report version 1", stoppedBy: "evidence/tsm/snp.go SNPVerifier.Appraise (version ≥ 2)",
		},
		{
			name: "untrusted SEV-SNP chain (fresh AMD keys)",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				keys, err := sim.NewSNPKeys()
				if err != nil {
					t.Fatal(err)
				}
				return fullPayload(t, ctx, newSNP(t, sim.SNPOptions{Keys: keys}), kcOf(t, honestClaims(t, o.Key.Public(), nonceOf(t, o))))
			},
			problem: badAttestation, detail: "VCEK could not be verified by any trusted roots", stoppedBy: "evidence/tsm/snp.go SNPVerifier.Appraise (go-sev-guest verify: ARK not trusted)",
		},
		{
			name: "SEV-SNP report changed after signing (MEASUREMENT of a trusted workload)",
			payload: tsmTamper(func(t *testing.T, r *tsm.Report) {
				rep, err := abi.ReportToProto(r.OutBlob)
				if err != nil {
					t.Fatal(err)
				}
				rep.Measurement = make([]byte, 48) // the "demo" workload's
				if r.OutBlob, err = abi.ReportToAbiBytes(rep); err != nil {
					t.Fatal(err)
				}
			}, sim.SNPOptions{Measurement: measurementUnlisted}),
			problem: badAttestation, detail: "report signature verification error", stoppedBy: "evidence/tsm/snp.go SNPVerifier.Appraise (report signature under the VCEK)",
		},
		{
			name: "SEV-SNP report without its certificate table",
			payload: tsmTamper(func(t *testing.T, r *tsm.Report) {
				r.AuxBlob = nil
			}, sim.SNPOptions{}),
			problem: badAttestation, detail: "no VCEK in auxblob", stoppedBy: "evidence/tsm/snp.go SNPVerifier.Appraise (offline: VCEK from auxblob)",
		},
		{
			name: "TSM provider that does not match the outblob",
			payload: tsmTamper(func(t *testing.T, r *tsm.Report) {
				r.Provider = tsm.ProviderTDX
			}, sim.SNPOptions{}),
			problem: badAttestation, detail: "provider is tdx_guest but the outblob is SEV-SNP", stoppedBy: "evidence/tsm/verifier.go Verifier.Appraise (sniffProvider)",
		},
		{
			name:    "TDX debug TD",
			payload: tdxPayload(sim.TDXOptions{Debug: true}),
			problem: badAttestation, detail: "DEBUG attribute", stoppedBy: "verifier/appraise.go Appraiser.appraiseTDX (debug) → " + checkEAR + "contraindicated",
		},
		{
			name:    "TDX MRTD in no workload",
			payload: tdxPayload(sim.TDXOptions{MRTD: measurementUnlisted}),
			problem: badAttestation, detail: "no workload matched MRTD", stoppedBy: "verifier/appraise.go Appraiser.appraiseTDX → " + checkEAR + "contraindicated",
		},
		{
			name: "untrusted TDX PCK chain (fresh PKI)",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				pki, err := sim.NewTDXPKI()
				if err != nil {
					t.Fatal(err)
				}
				return fullPayload(t, ctx, newTDX(t, sim.TDXOptions{PKI: pki}), kcOf(t, honestClaims(t, o.Key.Public(), nonceOf(t, o))))
			},
			problem: badAttestation, detail: "tdx: quote signature, QE report or PCK chain", stoppedBy: "evidence/tsm/tdx.go TDXVerifier.Appraise (go-tdx-guest verify: root not trusted)",
		},
		{
			name: "TDX quote with bytes after its signed data",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				kc := kcOf(t, honestClaims(t, o.Key.Public(), nonceOf(t, o)))
				ev := attestOver(t, ctx, newTDX(t, sim.TDXOptions{}), kc)
				r, err := tsm.ParseReport(ev.Data)
				if err != nil {
					t.Fatal(err)
				}
				r.OutBlob = append(r.OutBlob, make([]byte, 16)...)
				if ev.Data, err = r.Marshal(); err != nil {
					t.Fatal(err)
				}
				return payloadOf(t, attObjOf(t, bundleOf(t, kc, ev)))
			},
			problem: badAttestation, detail: "16 bytes after its signed data", stoppedBy: "evidence/tsm/tdx.go parseTDXQuote",
		},

		// Issuance policy.
		{
			name: "workload not allowed the identifier", id: "prod-1",
			payload: snpPayload(sim.SNPOptions{}),
			problem: rejectedIdentifier, detail: `workload "demo" may not have permanent-identifier "prod-1"`, stoppedBy: policyID,
		},
		{
			name:    "evidence of another workload for our identifier",
			payload: snpPayload(sim.SNPOptions{Measurement: measurementOther}),
			problem: rejectedIdentifier, detail: `workload "other" may not have permanent-identifier`, stoppedBy: policyID,
		},
		{
			name: "DNS identifier in the same order not allowed for the workload", extra: []xacme.AuthzID{{Type: "dns", Value: "api.prod.localhost"}},
			payload: snpPayload(sim.SNPOptions{}),
			problem: rejectedIdentifier, detail: `may not have DNS name "api.prod.localhost" (in the same order)`, stoppedBy: "caplugin/policy.go IssuancePolicy.AllowsDNSName (caplugin/validate.go validator.run)",
		},

		// The payload and its base64url (step-ca reads these first).
		{
			name: "attObj base64url with padding",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				attObj := attObjWhere(t, ctx, e, o, func(b []byte) bool { return len(b)%3 != 0 })
				return payloadWith(t, base64.URLEncoding.EncodeToString(attObj), nil)
			},
			problem: badAttestation, detail: "failed base64 decoding attObj", stoppedBy: stepCA + " (base64.RawURLEncoding)",
		},
		{
			name: "attObj in the standard base64 alphabet",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				attObj := attObjWhere(t, ctx, e, o, func(b []byte) bool {
					return strings.ContainsAny(base64.RawStdEncoding.EncodeToString(b), "+/")
				})
				return payloadWith(t, base64.RawStdEncoding.EncodeToString(attObj), nil)
			},
			problem: badAttestation, detail: "failed base64 decoding attObj", stoppedBy: stepCA + " (base64.RawURLEncoding)",
		},
		{
			name: "attObj base64url with non-zero trailing bits",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				attObj := attObjWhere(t, ctx, e, o, func(b []byte) bool { return len(b)%3 == 1 })
				s := []byte(base64.RawURLEncoding.EncodeToString(attObj))
				// The last character carries 2 bits of data and 4 that must be
				// zero; step-ca's lenient decoder ignores them.
				const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
				s[len(s)-1] = alphabet[strings.IndexByte(alphabet, s[len(s)-1])|1]
				return payloadWith(t, string(s), nil)
			},
			problem: badAttestation, detail: "attObj is not unpadded base64url", stoppedBy: parsePayload + " (base64.RawURLEncoding.Strict)",
		},
		{
			name: "payload with the error field",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				ans := honestAnswer(t, ctx, o, e.honest)
				return payloadWith(t, base64.RawURLEncoding.EncodeToString(ans.AttObj), map[string]any{"error": "attestation unavailable"})
			},
			problem: rejectedIdentifier, detail: "will not issue certificates for the identifier", stoppedBy: stepCA + " (payload error field)",
		},
		{
			name: "payload over the size limit (1 MiB attestation object)",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				return payloadOf(t, paddedAttObj(t, honestAnswer(t, ctx, o, e.honest).Bundle, 1<<20))
			},
			problem: malformed, detail: "over the limit of 262144", stoppedBy: "caplugin/server.go limitBody (request body ≤ 256 KiB, before step-ca reads it)",
		},

		// The attestation object.
		{
			name: "unknown fmt",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				ans := honestAnswer(t, ctx, o, e.honest)
				return payloadOf(t, mustCBOR(t, map[string]any{"fmt": "cmw2", "attStmt": map[string]any{"cmw": ans.Bundle}}))
			},
			problem: badAttestation, detail: `unsupported attestation object format "cmw2"`, stoppedBy: stepCA + " (format; caplugin/acmedb.go leaves it alone)",
		},
		{
			name: "fmt tpm, step-ca's own TPM format, around our bundle",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				ans := honestAnswer(t, ctx, o, e.honest)
				return payloadOf(t, mustCBOR(t, map[string]any{"fmt": "tpm", "attStmt": map[string]any{"cmw": ans.Bundle}}))
			},
			problem: badAttestation, detail: "ver not present", stoppedBy: "step-ca acme/challenge.go doTPMAttestationFormat",
		},
		{
			name: "attestation object over 64 KiB",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				return payloadOf(t, paddedAttObj(t, honestAnswer(t, ctx, o, e.honest).Bundle, challenge.MaxAttObjSize+1))
			},
			problem: badAttestation, detail: "attestation object: 65537 bytes, over the limit of 65536", stoppedBy: parseAttObj + " (size)",
		},
		{
			name: "deep CBOR nesting in the attestation object (12 levels)",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				return payloadOf(t, nestedAttObj(t, honestAnswer(t, ctx, o, e.honest).Bundle, 12))
			},
			problem: badAttestation, detail: "exceeded max nested level", stoppedBy: parseAttObj + " (MaxNestedLevels 8)",
		},
		{
			name: "deep CBOR nesting in the attestation object (24 levels)",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				return payloadOf(t, nestedAttObj(t, honestAnswer(t, ctx, o, e.honest).Bundle, 24))
			},
			problem: badAttestation, detail: "exceeded max nested level", stoppedBy: parseAttObj + " (MaxNestedLevels 8)",
		},
		{
			name: "deep CBOR nesting in the attestation object (40 levels)",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				return payloadOf(t, nestedAttObj(t, honestAnswer(t, ctx, o, e.honest).Bundle, 40))
			},
			problem: badAttestation, detail: "attObj is not well formed CBOR", stoppedBy: stepCA + " (cbor Wellformed, MaxNestedLevels 32)",
		},
		{
			name: "duplicate fmt key in the attestation object",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				ans := honestAnswer(t, ctx, o, e.honest)
				return payloadOf(t, rawMap(t,
					mustCBOR(t, "fmt"), mustCBOR(t, "cmw"),
					mustCBOR(t, "attStmt"), mustCBOR(t, map[string]any{"cmw": ans.Bundle}),
					mustCBOR(t, "fmt"), mustCBOR(t, "cmw")))
			},
			problem: badAttestation, detail: "duplicate map key", stoppedBy: parseAttObj + " (DupMapKeyEnforcedAPF)",
		},
		{
			name: "attStmt.cmw is a text string",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				ans := honestAnswer(t, ctx, o, e.honest)
				return payloadOf(t, mustCBOR(t, map[string]any{"fmt": "cmw", "attStmt": map[string]any{"cmw": base64.StdEncoding.EncodeToString(ans.Bundle)}}))
			},
			problem: badAttestation, detail: "attStmt.cmw is not a byte string", stoppedBy: parseAttObj,
		},
		{
			name: "text string with invalid UTF-8 in the attestation object",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				ans := honestAnswer(t, ctx, o, e.honest)
				return payloadOf(t, mustCBOR(t, map[string]any{"fmt": "cmw", "attStmt": map[string]any{"cmw": string(ans.Bundle)}}))
			},
			problem: serverInternal, detail: "internal error", stoppedBy: stepCA + " (CBOR Unmarshal of attObj fails after Wellformed: error 500, challenge left pending)",
		},

		// The bundle.
		{
			name: "bundle with an extra label",
			payload: bundlePayload(func(t *testing.T, kc []byte, ev evidence.Evidence) []byte {
				return collectionOf(t, evidence.CollectionType, kcRecord(kc), platformRecord(ev),
					record{label: "extra", mediaType: evidence.MediaTypeKC, value: kc, indicator: cmw.Evidence})
			}),
			problem: badAttestation, detail: `label "extra" is not allowed`, stoppedBy: parseBundle + " (checkBundleShape)",
		},
		{
			name: "duplicate kc label in the bundle",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				ans := honestAnswer(t, ctx, o, e.honest)
				other := kcOf(t, honestClaims(t, newKey(t).Public(), nonceOf(t, o)))
				rec := func(mt string, v []byte) []byte { return mustCBOR(t, []any{mt, v, 4}) }
				bundle := rawMap(t,
					mustCBOR(t, "__cmwc_t"), mustCBOR(t, evidence.CollectionType),
					mustCBOR(t, "kc"), rec(evidence.MediaTypeKC, ans.KC),
					mustCBOR(t, "platform"), rec(ans.Evidence.MediaType, ans.Evidence.Data),
					mustCBOR(t, "kc"), rec(evidence.MediaTypeKC, other))
				return payloadOf(t, attObjOf(t, bundle))
			},
			problem: badAttestation, detail: "duplicate map key", stoppedBy: parseBundle + " (DupMapKeyEnforcedAPF)",
		},
		{
			name: "CBOR-tag CMW as the platform record",
			payload: bundlePayload(func(t *testing.T, kc []byte, ev evidence.Evidence) []byte {
				return collectionOf(t, evidence.CollectionType, kcRecord(kc),
					record{label: evidence.LabelPlatform, mediaType: uint16(10570), value: ev.Data, indicator: cmw.Evidence, tagForm: true})
			}),
			problem: badAttestation, detail: `record "platform" is not [media type, value, indicator]`, stoppedBy: parseBundle + " (checkRecord: record form only)",
		},
		{
			name: "bundle of another collection type",
			payload: bundlePayload(func(t *testing.T, kc []byte, ev evidence.Evidence) []byte {
				return collectionOf(t, "tag:attest-acme.dev,2026:key-confirmation/v0", kcRecord(kc), platformRecord(ev))
			}),
			problem: badAttestation, detail: `__cmwc_t is "tag:attest-acme.dev,2026:key-confirmation/v0"`, stoppedBy: parseBundle + " (checkBundleShape)",
		},
		{
			name: "platform record with indicator reference values",
			payload: bundlePayload(func(t *testing.T, kc []byte, ev evidence.Evidence) []byte {
				r := platformRecord(ev)
				r.indicator = cmw.ReferenceValues
				return collectionOf(t, evidence.CollectionType, kcRecord(kc), r)
			}),
			problem: badAttestation, detail: `record "platform" indicator is 1, want 4`, stoppedBy: parseBundle + " (checkRecord)",
		},
		{
			name: "platform media type unknown",
			payload: bundlePayload(func(t *testing.T, kc []byte, ev evidence.Evidence) []byte {
				r := platformRecord(ev)
				r.mediaType = "application/vnd.example.fake-quote+cbor"
				return collectionOf(t, evidence.CollectionType, kcRecord(kc), r)
			}),
			problem: badAttestation, detail: `platform media type "application/vnd.example.fake-quote+cbor" is not supported`, stoppedBy: decodeBundle + " (evidence.BindingHashFor)",
		},
		{
			name: "platform record over 32 KiB",
			payload: bundlePayload(func(t *testing.T, kc []byte, ev evidence.Evidence) []byte {
				r, err := tsm.ParseReport(ev.Data)
				if err != nil {
					t.Fatal(err)
				}
				// A host that stuffs the certificate table.
				big := mustCBOR(t, map[string][]byte{"provider": []byte(r.Provider), "outblob": r.OutBlob, "auxblob": append(r.AuxBlob, make([]byte, 33<<10)...)})
				return collectionOf(t, evidence.CollectionType, kcRecord(kc), record{label: evidence.LabelPlatform, mediaType: ev.MediaType, value: big, indicator: cmw.Evidence})
			}),
			problem: badAttestation, detail: `record "platform" value is`, stoppedBy: parseBundle + " (checkRecord: 32 KiB)",
		},
		{
			name: "kc over 1 KiB",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				c := honestClaims(t, o.Key.Public(), nonceOf(t, o))
				c[-70000] = make([]byte, 1100)
				kc := kcOf(t, c)
				ev := attestOver(t, ctx, e.honest, kc)
				return payloadOf(t, attObjOf(t, collectionOf(t, evidence.CollectionType, kcRecord(kc), platformRecord(ev))))
			},
			problem: badAttestation, detail: `record "kc" value is`, stoppedBy: parseBundle + " (checkRecord: 1 KiB)",
		},

		// The kc.
		{
			name:    "kc with intuse 3 instead of 4",
			payload: kcPayload(func(t *testing.T, c claims) { c[275] = 3 }),
			problem: badAttestation, detail: "kc: intuse is 3, want 4", stoppedBy: parseKC,
		},
		{
			name:    "kc iat 11 minutes old",
			payload: kcPayload(func(t *testing.T, c claims) { c[6] = time.Now().Add(-11 * time.Minute).Unix() }),
			problem: badAttestation, detail: "is more than 10m0s old", stoppedBy: "evidence/kc.go KC.CheckFreshness (via " + decodeBundle + ")",
		},
		{
			name:    "kc iat 6 minutes in the future",
			payload: kcPayload(func(t *testing.T, c claims) { c[6] = time.Now().Add(6 * time.Minute).Unix() }),
			problem: badAttestation, detail: "is more than 5m0s in the future", stoppedBy: "evidence/kc.go KC.CheckFreshness (via " + decodeBundle + ")",
		},
		{
			name:    "kc iat a huge integer (2^64-1)",
			payload: kcPayload(func(t *testing.T, c claims) { c[6] = uint64(math.MaxUint64) }),
			problem: badAttestation, detail: "kc: iat is not an integer", stoppedBy: parseKC + " (int64 overflow)",
		},
		{
			name:    "kc iat a bignum (tag 2)",
			payload: kcPayload(func(t *testing.T, c claims) { c[6] = new(big.Int).Lsh(big.NewInt(1), 100) }),
			problem: badAttestation, detail: "kc: iat is not an integer", stoppedBy: parseKC,
		},
		{
			name:    "kc intuse a huge integer (2^64-1)",
			payload: kcPayload(func(t *testing.T, c claims) { c[275] = uint64(math.MaxUint64) }),
			problem: badAttestation, detail: "kc: intuse is not an integer", stoppedBy: parseKC + " (int64 overflow)",
		},
		{
			name:    "deep CBOR nesting inside the kc",
			payload: kcPayload(func(t *testing.T, c claims) { c[-70000] = cbor.RawMessage(nested(t, 10)) }),
			problem: badAttestation, detail: "exceeded max nested level", stoppedBy: parseKC + " (MaxNestedLevels 8)",
		},
		{
			name: "duplicate eat_nonce in the kc",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				m := rawMap(t,
					mustCBOR(t, 6), mustCBOR(t, time.Now().Unix()),
					mustCBOR(t, 8), mustCBOR(t, map[int]cbor.RawMessage{1: coseKey(t, o.Key.Public())}),
					mustCBOR(t, 10), mustCBOR(t, make([]byte, 32)),
					mustCBOR(t, 275), mustCBOR(t, 4),
					mustCBOR(t, 10), mustCBOR(t, nonceOf(t, o)))
				kc := mustCBOR(t, cbor.RawTag{Number: evidence.TagUCCS, Content: m})
				return fullPayload(t, ctx, e.honest, kc)
			},
			problem: badAttestation, detail: "duplicate map key", stoppedBy: parseKC + " (DupMapKeyEnforcedAPF)",
		},
		{
			name:    "kc without eat_nonce",
			payload: kcPayload(func(t *testing.T, c claims) { delete(c, 10) }),
			problem: badAttestation, detail: "claim eat_nonce (10) is missing", stoppedBy: parseKC,
		},
		{
			name: "RSA 1024 key in the kc",
			payload: kcPayload(func(t *testing.T, c claims) {
				k, err := rsa.GenerateKey(rand.Reader, 1024)
				if err != nil {
					t.Fatal(err)
				}
				c[8] = map[int]cbor.RawMessage{1: coseKey(t, &k.PublicKey)}
			}),
			problem: badAttestation, detail: "RSA key of 1024 bits", stoppedBy: "evidence/cosekey.go CheckKey (via ParseKC)",
		},
		{
			name: "EC point off the curve in the kc",
			payload: kcPayload(func(t *testing.T, c claims) {
				k := newKey(t)
				x := k.X.FillBytes(make([]byte, 32))
				y := new(big.Int).Add(k.Y, big.NewInt(1)).FillBytes(make([]byte, 32))
				ck := &cose.Key{Type: cose.KeyTypeEC2, Params: map[any]any{cose.KeyLabelEC2Curve: cose.CurveP256, cose.KeyLabelEC2X: x, cose.KeyLabelEC2Y: y}}
				b, err := ck.MarshalCBOR()
				if err != nil {
					t.Fatal(err)
				}
				c[8] = map[int]cbor.RawMessage{1: b}
			}),
			problem: badAttestation, detail: "COSE_Key: EC2 point", stoppedBy: "evidence/cosekey.go publicFromCOSEKey",
		},
		{
			name: "kc cnf naming two keys",
			payload: kcPayload(func(t *testing.T, c claims) {
				cnf := c[8].(map[int]cbor.RawMessage)
				cnf[3] = coseKey(t, newKey(t).Public())
			}),
			problem: badAttestation, detail: "cnf must hold exactly one member", stoppedBy: parseKC,
		},
		{
			name: "kc COSE_Key carrying the private key (d)",
			payload: kcPayload(func(t *testing.T, c claims) {
				k, err := cose.NewKeyFromPrivate(newKey(t))
				if err != nil {
					t.Fatal(err)
				}
				b, err := k.MarshalCBOR()
				if err != nil {
					t.Fatal(err)
				}
				c[8] = map[int]cbor.RawMessage{1: b}
			}),
			problem: badAttestation, detail: "COSE_Key: parameter -4 is not allowed", stoppedBy: "evidence/cosekey.go publicFromCOSEKey",
		},
	}
}

// validElsewhere makes one of acct's other challenges valid with an honest
// answer and returns that answer.
func validElsewhere(t *testing.T, ctx context.Context, e *env, acct *harness.Account) *challenge.Answer {
	t.Helper()
	src, err := acct.NewOrder(ctx, "vm-source")
	if err != nil {
		t.Fatal(err)
	}
	ans := honestAnswer(t, ctx, src, e.honest)
	if ch, err := src.Post(ctx, ans.Payload); err != nil || ch.Status != xacme.StatusValid {
		t.Fatalf("the source challenge: %v, %+v; want valid", err, ch)
	}
	return ans
}

// tcb composes a Milan TCB_VERSION from its security patch levels.
func tcb(bootloader, tee, snp, microcode uint8) uint64 {
	return uint64(bootloader) | uint64(tee)<<8 | uint64(snp)<<48 | uint64(microcode)<<56
}

// snpPayload is an honest client's answer from a simulated SEV-SNP guest
// described by opts.
func snpPayload(opts sim.SNPOptions) func(*testing.T, context.Context, *env, *harness.Order) []byte {
	return func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
		return honestAnswer(t, ctx, o, newSNP(t, opts)).Payload
	}
}

// tdxPayload is an honest client's answer from a simulated TD.
func tdxPayload(opts sim.TDXOptions) func(*testing.T, context.Context, *env, *harness.Order) []byte {
	return func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
		return honestAnswer(t, ctx, o, newTDX(t, opts)).Payload
	}
}

// tsmTamper changes the configfs-tsm report map of an SEV-SNP guest's
// honest evidence before it is bundled.
func tsmTamper(change func(*testing.T, *tsm.Report), opts sim.SNPOptions) func(*testing.T, context.Context, *env, *harness.Order) []byte {
	return func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
		kc := kcOf(t, honestClaims(t, o.Key.Public(), nonceOf(t, o)))
		ev := attestOver(t, ctx, newSNP(t, opts), kc)
		r, err := tsm.ParseReport(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		change(t, r)
		if ev.Data, err = r.Marshal(); err != nil {
			t.Fatal(err)
		}
		return payloadOf(t, attObjOf(t, bundleOf(t, kc, ev)))
	}
}

// bundlePayload builds the bundle from an honest kc and evidence with build.
func bundlePayload(build func(t *testing.T, kc []byte, ev evidence.Evidence) []byte) func(*testing.T, context.Context, *env, *harness.Order) []byte {
	return func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
		kc := kcOf(t, honestClaims(t, o.Key.Public(), nonceOf(t, o)))
		ev := attestOver(t, ctx, e.honest, kc)
		return payloadOf(t, attObjOf(t, build(t, kc, ev)))
	}
}

// kcPayload changes an honest client's kc claims, then has the honest
// platform attest the result: only the kc is wrong.
func kcPayload(change func(*testing.T, claims)) func(*testing.T, context.Context, *env, *harness.Order) []byte {
	return func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
		c := honestClaims(t, o.Key.Public(), nonceOf(t, o))
		change(t, c)
		return fullPayload(t, ctx, e.honest, kcOf(t, c))
	}
}

// paddedAttObj is an attestation object around bundle with an ignored
// "pad" member sized so that the whole is exactly size bytes.
func paddedAttObj(t *testing.T, bundle []byte, size int) []byte {
	t.Helper()
	build := func(n int) []byte {
		return mustCBOR(t, map[string]any{"fmt": "cmw", "attStmt": map[string]any{"cmw": bundle}, "pad": make([]byte, n)})
	}
	n := size - len(build(0))
	for range 8 { // the byte string's head grows with n
		b := build(n)
		if len(b) == size {
			return b
		}
		n -= len(b) - size
	}
	t.Fatalf("no attestation object of %d bytes", size)
	return nil
}

// nestedAttObj is an attestation object around bundle with an ignored
// member depth arrays deep.
func nestedAttObj(t *testing.T, bundle []byte, depth int) []byte {
	t.Helper()
	return rawMap(t,
		mustCBOR(t, "fmt"), mustCBOR(t, "cmw"),
		mustCBOR(t, "attStmt"), mustCBOR(t, map[string]any{"cmw": bundle}),
		mustCBOR(t, "x"), nested(t, depth))
}

// attObjWhere is an honest attestation object for o, with an ignored "pad"
// member of 0 to 63 bytes of 0xff chosen so that ok holds.
func attObjWhere(t *testing.T, ctx context.Context, e *env, o *harness.Order, ok func([]byte) bool) []byte {
	t.Helper()
	ans := honestAnswer(t, ctx, o, e.honest)
	for n := range 64 {
		b := mustCBOR(t, map[string]any{"fmt": "cmw", "attStmt": map[string]any{"cmw": ans.Bundle}, "pad": bytes.Repeat([]byte{0xff}, n)})
		if ok(b) {
			return b
		}
	}
	t.Fatal("no padding gives the attestation object wanted")
	return nil
}
