package adversarial_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"go.step.sm/crypto/pemutil"

	"github.com/attest-acme/attest-acme/caplugin"
	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/attest-acme/attest-acme/tests/internal/harness"
)

// pcrDebug is the debug PCR, which software at locality 0 may reset; the
// TPM workload lists it (all zero), so extending it makes evidence that no
// workload matches, and resetting it restores the honest state.
const pcrDebug = 16

// tpmSelection is what the TPM group's attesters quote.
func tpmSelection() tpm.PCRSelection {
	return tpm.PCRSelection{tpm.BankSHA256: {0, 1, 2, 3, 4, 5, 6, 7, pcrDebug}}
}

// tpmEnv is the TPM group's state beyond env: the simulator, and the other
// pinned AK's TPMT_PUBLIC.
type tpmEnv struct {
	dev     transport.TPM
	otherAK []byte
}

// TestAttacksTPM runs the attacks on TPM 2.0 quotes against a CA whose
// embedded verifier pins two simulator AKs and a workload of the
// simulator's PCR values. The simulator is one per process; the attacks
// share it.
func TestAttacksTPM(t *testing.T) {
	ctx := testContext(t)
	// A first simulator, manufactured afresh, gives a second trusted AK.
	otherAK, otherPub := simulatorAK(t, ctx)

	dev, err := tpm.OpenSimulator()
	if err != nil {
		if !cgoEnabled {
			t.Skipf("TPM simulator: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	att, err := tpm.NewAttester(dev, tpm.Config{PCRs: tpmSelection()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { att.Close() })
	ev, err := att.Attest(ctx, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	q, err := tpm.ParseQuote(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(q.AK, otherAK) {
		t.Fatal("the simulator made the same AK twice; the AK swap would swap nothing")
	}
	if !bytes.Equal(q.PCRs[tpm.BankSHA256][pcrDebug], make([]byte, 32)) {
		t.Fatalf("PCR %d is %x, want it reset", pcrDebug, q.PCRs[tpm.BankSHA256][pcrDebug])
	}
	ca := harness.StartT(t, harness.Options{
		Dev: func(d *caplugin.DevSetup) {
			d.PermanentIdentifiers = []string{"vm-*"}
			d.TPMAKPublicKeysPEM = publicPEM(t, att.AKPublic())
			d.TPMPCRs = map[string]map[int][]byte{tpm.BankSHA256.String(): q.PCRs[tpm.BankSHA256]}
		},
		// The policy pins the second AK too, one PEM file per key.
		Configure: func(s *harness.Setup) error {
			if err := os.WriteFile(filepath.Join(s.Dir, "certs", "tpm_ak_2.pem"), publicPEM(t, otherPub), 0o644); err != nil {
				return err
			}
			pol, err := os.ReadFile(s.Files.VerifierPolicy)
			if err != nil {
				return err
			}
			const one = "ak_public_keys: [certs/tpm_ak_public_keys.pem]"
			if !bytes.Contains(pol, []byte(one)) {
				return fmt.Errorf("the development policy has no %q", one)
			}
			pol = bytes.Replace(pol, []byte(one), []byte("ak_public_keys: [certs/tpm_ak_public_keys.pem, certs/tpm_ak_2.pem]"), 1)
			return os.WriteFile(s.Files.VerifierPolicy, pol, 0o644)
		},
	})
	e := &env{ca: ca, honest: att, tpm: &tpmEnv{dev: dev, otherAK: otherAK}}
	honestControl(t, e.withAccounts(t, ctx), "vm-control-1")
	run(t, e, tpmAttacks())
	honestControl(t, e.withAccounts(t, ctx), "vm-control-2")
	checkNothingIssued(t, ca, 2)
}

// publicPEM is a public key as PEM (SPKI).
func publicPEM(t *testing.T, k crypto.PublicKey) []byte {
	t.Helper()
	blk, err := pemutil.Serialize(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(blk)
}

// simulatorAK opens the simulator, returns its AK (TPMT_PUBLIC and public
// key), and closes it.
func simulatorAK(t *testing.T, ctx context.Context) ([]byte, crypto.PublicKey) {
	t.Helper()
	dev, err := tpm.OpenSimulator()
	if err != nil {
		if !cgoEnabled {
			t.Skipf("TPM simulator: %v", err)
		}
		t.Fatal(err)
	}
	defer dev.Close()
	att, err := tpm.NewAttester(dev, tpm.Config{PCRs: tpmSelection()})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	ev, err := att.Attest(ctx, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	q, err := tpm.ParseQuote(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	return q.AK, att.AKPublic()
}

// tpmAttacks are the attacks of TestAttacksTPM.
func tpmAttacks() []attack {
	const appraise = "evidence/tpm/appraise.go Verifier.Appraise"
	return []attack{
		{
			name: "TPM quote over another kc (another D)",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				ours := kcOf(t, honestClaims(t, o.Key.Public(), nonceOf(t, o)))
				theirs := kcOf(t, honestClaims(t, newKey(t).Public(), nonceOf(t, o)))
				return payloadOf(t, attObjOf(t, bundleOf(t, ours, attestOver(t, ctx, e.honest, theirs))))
			},
			problem: badAttestation, detail: "tpm: quote qualifyingData is", stoppedBy: appraise + " (extraData = D = SHA-256(kc))",
		},
		{
			name: "truncated TPM quote map",
			payload: quoteTamper(func(t *testing.T, e *env, data []byte) []byte {
				return data[:len(data)-40]
			}),
			problem: badAttestation, detail: "tpm quote: unexpected EOF", stoppedBy: "evidence/tpm/quote.go ParseQuote",
		},
		{
			name: "truncated TPMT_SIGNATURE in the quote",
			payload: quoteEdit(func(t *testing.T, e *env, q *tpm.Quote) {
				q.Sig = q.Sig[:len(q.Sig)-10]
			}),
			problem: badAttestation, detail: "tpm: sig is not a TPMT_SIGNATURE", stoppedBy: appraise + " (tpm2.Unmarshal TPMT_SIGNATURE, no trailing bytes)",
		},
		{
			name: "truncated TPMS_ATTEST in the quote",
			payload: quoteEdit(func(t *testing.T, e *env, q *tpm.Quote) {
				q.Quoted = q.Quoted[:len(q.Quoted)-10]
			}),
			problem: badAttestation, detail: "tpm: quote signature", stoppedBy: appraise + " (signature over quoted)",
		},
		{
			name: "AK swapped after quoting (another pinned AK)",
			payload: quoteEdit(func(t *testing.T, e *env, q *tpm.Quote) {
				q.AK = e.tpm.otherAK
			}),
			problem: badAttestation, detail: "tpm: quote signature", stoppedBy: appraise + " (signature under the AK named)",
		},
		{
			name: "quote re-signed by a software key posing as an AK",
			payload: quoteEdit(func(t *testing.T, e *env, q *tpm.Quote) {
				q.AK, q.Sig = softwareAK(t, q.AK, q.Quoted)
			}),
			problem: badAttestation, detail: "is not pinned and the quote has no akchain", stoppedBy: "evidence/tpm/appraise.go Verifier.trustAK",
		},
		{
			name: "PCR values that do not match the quoted digest",
			payload: quoteEdit(func(t *testing.T, e *env, q *tpm.Quote) {
				q.PCRs[tpm.BankSHA256][0] = bytes.Repeat([]byte{0x42}, 32)
			}),
			problem: badAttestation, detail: "tpm: pcrs do not match the quote", stoppedBy: "evidence/tpm/appraise.go checkPCRs (pcrDigest)",
		},
		{
			name: "PCR value sent that the quote does not select",
			payload: quoteEdit(func(t *testing.T, e *env, q *tpm.Quote) {
				q.PCRs[tpm.BankSHA256][8] = make([]byte, 32)
			}),
			problem: badAttestation, detail: "is in pcrs but not quoted", stoppedBy: "evidence/tpm/appraise.go checkPCRs (selection)",
		},
		{
			name: "quote leaving out a PCR the workload lists",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				att, err := tpm.NewAttester(e.tpm.dev, tpm.Config{PCRs: tpm.PCRSelection{tpm.BankSHA256: {0, 1, 2, 3, 4, 5, 6, 7}}})
				if err != nil {
					t.Fatal(err)
				}
				defer att.Close()
				return honestAnswer(t, ctx, o, att).Payload
			},
			problem: badAttestation, detail: "no workload matched the quoted PCR values", stoppedBy: "verifier/appraise.go Appraiser.appraiseTPM (matchPCRs) → verifier/ear.go Checker.check (status) contraindicated",
			serial: true, // a second AK object on the simulator, which has few slots
		},
		{
			name: "TPM PCR values in no workload (debug PCR extended)",
			payload: func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
				h := tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcrDebug), Auth: tpm2.PasswordAuth(nil)}
				if _, err := (tpm2.PCREvent{PCRHandle: h, EventData: tpm2.TPM2BEvent{Buffer: []byte("attacker's module")}}).Execute(e.tpm.dev); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if _, err := (tpm2.PCRReset{PCRHandle: h}).Execute(e.tpm.dev); err != nil {
						t.Errorf("resetting PCR %d: %v", pcrDebug, err)
					}
				})
				return honestAnswer(t, ctx, o, e.honest).Payload
			},
			problem: badAttestation, detail: "no workload matched the quoted PCR values", stoppedBy: "verifier/appraise.go Appraiser.appraiseTPM (matchPCRs) → verifier/ear.go Checker.check (status) contraindicated",
			serial: true, // the PCR is the simulator's, shared by every attack
		},
	}
}

// quoteTamper changes the bytes of an honest quote map over o's kc.
func quoteTamper(change func(t *testing.T, e *env, data []byte) []byte) func(*testing.T, context.Context, *env, *harness.Order) []byte {
	return func(t *testing.T, ctx context.Context, e *env, o *harness.Order) []byte {
		kc := kcOf(t, honestClaims(t, o.Key.Public(), nonceOf(t, o)))
		ev := attestOver(t, ctx, e.honest, kc)
		ev.Data = change(t, e, ev.Data)
		return payloadOf(t, attObjOf(t, bundleOf(t, kc, ev)))
	}
}

// quoteEdit changes the decoded quote map of an honest quote over o's kc and
// encodes it again (tpm.Quote.Marshal).
func quoteEdit(change func(t *testing.T, e *env, q *tpm.Quote)) func(*testing.T, context.Context, *env, *harness.Order) []byte {
	return quoteTamper(func(t *testing.T, e *env, data []byte) []byte {
		q, err := tpm.ParseQuote(data)
		if err != nil {
			t.Fatal(err)
		}
		change(t, e, q)
		out, err := q.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
}

// softwareAK returns the TPMT_PUBLIC of a fresh software P-256 key with the
// attributes of the AK ak (restricted, sign-only, fixedTPM: what it claims,
// not what it is) and its ECDSA TPMT_SIGNATURE over quoted.
func softwareAK(t *testing.T, ak, quoted []byte) ([]byte, []byte) {
	t.Helper()
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ak)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: k.X.FillBytes(make([]byte, 32))},
		Y: tpm2.TPM2BECCParameter{Buffer: k.Y.FillBytes(make([]byte, 32))},
	})
	digest := sha256.Sum256(quoted)
	r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := tpm2.TPMTSignature{
		SigAlg: tpm2.TPMAlgECDSA,
		Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
			Hash:       tpm2.TPMAlgSHA256,
			SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()},
			SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()},
		}),
	}
	return tpm2.Marshal(*pub), tpm2.Marshal(sig)
}
