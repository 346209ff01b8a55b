package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
)

func TestNewVerifierRejects(t *testing.T) {
	root, _ := newTestCA(t, "root", nil)
	for _, tc := range []struct {
		name    string
		anchors Anchors
		want    string
	}{
		{"no anchors", Anchors{}, "no AK anchors"},
		{"roots without a clock", Anchors{Roots: []*x509.Certificate{root}}, "need a clock"},
		{"pinned key of an unsupported type", Anchors{AKs: []crypto.PublicKey{"not a key"}}, "pinned AK 0 is a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewVerifier(tc.anchors)
			wantErr(t, err, tc.want)
		})
	}
}

// TestAppraiseRejects runs every rejection against one real simulator quote,
// changed in one way each time.
func TestAppraiseRejects(t *testing.T) {
	f := newFixture(t, Config{})
	ak := f.a.AKPublic()
	v := pinned(t, ak)
	if _, err := v.Appraise(f.data, f.d); err != nil {
		t.Fatalf("the unchanged quote does not appraise: %v", err)
	}
	// A second AK on the same TPM, from the endorsement hierarchy.
	other := newAttester(t, f.tpm, Config{Hierarchy: HierarchyEndorsement})
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	t.Run("AK not pinned and no chain", func(t *testing.T) {
		_, err := pinned(t, stranger.Public()).Appraise(f.data, f.d)
		fp, _ := AKFingerprint(ak)
		wantErr(t, err, "is not pinned", "no akchain", fp)
	})
	t.Run("AK swapped after quoting", func(t *testing.T) {
		swapped := mutate(t, f.data, func(q *Quote) { q.AK = other.akPublic })
		_, err := pinned(t, ak, other.AKPublic()).Appraise(swapped, f.d)
		wantErr(t, err, "quote signature", "does not verify under the AK")
	})
	t.Run("quoted bytes tampered", func(t *testing.T) {
		tampered := mutate(t, f.data, func(q *Quote) { q.Quoted[len(q.Quoted)-1] ^= 1 })
		_, err := v.Appraise(tampered, f.d)
		wantErr(t, err, "quote signature", "does not verify")
	})
	t.Run("signature tampered", func(t *testing.T) {
		tampered := mutate(t, f.data, func(q *Quote) { q.Sig[len(q.Sig)-1] ^= 1 })
		_, err := v.Appraise(tampered, f.d)
		wantErr(t, err, "does not verify")
	})
	t.Run("sig is not a TPMT_SIGNATURE", func(t *testing.T) {
		bad := mutate(t, f.data, func(q *Quote) { q.Sig = q.Sig[:len(q.Sig)-1] })
		_, err := v.Appraise(bad, f.d)
		wantErr(t, err, "sig is not a TPMT_SIGNATURE")
	})
	t.Run("sig with trailing bytes", func(t *testing.T) {
		bad := mutate(t, f.data, func(q *Quote) { q.Sig = append(q.Sig, 0) })
		_, err := v.Appraise(bad, f.d)
		wantErr(t, err, "sig is not a TPMT_SIGNATURE", "the structure uses")
	})
	t.Run("kc changed after quoting", func(t *testing.T) {
		_, d2 := newBinding(t)
		_, err := v.Appraise(f.data, d2)
		wantErr(t, err, "qualifyingData", hex.EncodeToString(f.d), hex.EncodeToString(d2), "kc changed after quoting")
	})
	t.Run("expected D is empty", func(t *testing.T) {
		_, err := v.Appraise(f.data, nil)
		wantErr(t, err, "expected qualifyingData is empty")
	})
	t.Run("PCR value changed", func(t *testing.T) {
		changed := mutate(t, f.data, func(q *Quote) { q.PCRs[BankSHA256][4][0] ^= 0xff })
		_, err := v.Appraise(changed, f.d)
		wantErr(t, err, "pcrs do not match the quote", "pcrDigest")
	})
	t.Run("PCR missing from the map", func(t *testing.T) {
		missing := mutate(t, f.data, func(q *Quote) { delete(q.PCRs[BankSHA256], 3) })
		_, err := v.Appraise(missing, f.d)
		wantErr(t, err, "PCR sha256:3 is quoted but missing from pcrs")
	})
	t.Run("extra PCR in the map", func(t *testing.T) {
		extra := mutate(t, f.data, func(q *Quote) { q.PCRs[BankSHA256][9] = make([]byte, 32) })
		_, err := v.Appraise(extra, f.d)
		wantErr(t, err, "PCR sha256:9 is in pcrs but not quoted")
	})
	t.Run("extra bank in the map", func(t *testing.T) {
		extra := mutate(t, f.data, func(q *Quote) { q.PCRs[BankSHA1] = map[int][]byte{0: make([]byte, 20)} })
		_, err := v.Appraise(extra, f.d)
		wantErr(t, err, "PCR sha1:0 is in pcrs but not quoted")
	})
	t.Run("not a quote map", func(t *testing.T) {
		_, err := v.Appraise(f.data[:len(f.data)-2], f.d)
		wantErr(t, err, "tpm quote:", "unexpected EOF")
	})
	t.Run("attestation of another type", func(t *testing.T) {
		// The AK really signs a TPM2_Certify of itself: a valid signature
		// over a TPMS_ATTEST that is not a quote.
		auth := tpm2.AuthHandle{Handle: f.a.handle, Name: f.a.name, Auth: tpm2.PasswordAuth(nil)}
		rsp, err := tpm2.Certify{ObjectHandle: auth, SignHandle: auth,
			QualifyingData: tpm2.TPM2BData{Buffer: f.d},
			InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull}}.Execute(f.tpm)
		if err != nil {
			t.Fatalf("TPM2_Certify: %v", err)
		}
		certify := mutate(t, f.data, func(q *Quote) {
			q.Quoted = rsp.CertifyInfo.Bytes()
			q.Sig = tpm2.Marshal(rsp.Signature)
		})
		_, err = v.Appraise(certify, f.d)
		wantErr(t, err, "type 0x8017", "want TPM_ST_ATTEST_QUOTE")
	})
}

// TestAppraiseRejectsForged covers the checks that a real TPM cannot be made
// to fail: keys with the wrong attributes and well-signed but malformed
// attestations, produced by a pinned software key.
func TestAppraiseRejectsForged(t *testing.T) {
	d := bytes.Repeat([]byte{0xd0}, 32)
	pcr0 := bytes.Repeat([]byte{0x11}, 32)
	pcrs := func() PCRValues { return PCRValues{BankSHA256: {0: bytes.Clone(pcr0)}} }

	good := newForger(t, nil)
	if _, err := pinned(t, good.public()).Appraise(good.quote(t, quoteAttest(t, d, pcr0, nil), tpm2.TPMAlgSHA256, pcrs()), d); err != nil {
		t.Fatalf("the forger's well-formed quote does not appraise: %v", err)
	}

	for _, tc := range []struct {
		name   string
		attrs  func(*tpm2.TPMAObject)
		change func(*tpm2.TPMSAttest)
		hash   tpm2.TPMAlgID
		want   []string
	}{
		{name: "AK not restricted", attrs: func(a *tpm2.TPMAObject) { a.Restricted = false },
			want: []string{"ak:", "not restricted"}},
		{name: "AK without sign", attrs: func(a *tpm2.TPMAObject) { a.SignEncrypt = false },
			want: []string{"ak:", "sign attribute"}},
		{name: "AK with decrypt", attrs: func(a *tpm2.TPMAObject) { a.Decrypt = true },
			want: []string{"ak:", "decrypt attribute"}},
		{name: "AK not fixedTPM", attrs: func(a *tpm2.TPMAObject) { a.FixedTPM = false },
			want: []string{"ak:", "not fixedTPM"}},
		{name: "signature hash differs from the AK scheme", hash: tpm2.TPMAlgSHA384,
			want: []string{"quote signature", "differs from the AK's"}},
		{name: "signature with SHA-1", hash: tpm2.TPMAlgSHA1,
			want: []string{"quote signature", "hash 0x0004 is not supported"}},
		{name: "wrong magic", change: func(a *tpm2.TPMSAttest) { a.Magic = 0x12345678 },
			want: []string{"magic 0x12345678", "want TPM_GENERATED_VALUE"}},
		{name: "wrong type", change: func(a *tpm2.TPMSAttest) {
			a.Type = tpm2.TPMSTAttestTime
			a.Attested = tpm2.NewTPMUAttest(tpm2.TPMSTAttestTime, &tpm2.TPMSTimeAttestInfo{})
		}, want: []string{"type 0x8019", "want TPM_ST_ATTEST_QUOTE"}},
		{name: "quote selects no PCRs", change: func(a *tpm2.TPMSAttest) {
			q, _ := a.Attested.Quote()
			q.PCRSelect = tpm2.TPMLPCRSelection{}
		}, want: []string{"selects no PCRs"}},
		{name: "quote selects PCR 24", change: func(a *tpm2.TPMSAttest) {
			q, _ := a.Attested.Quote()
			q.PCRSelect.PCRSelections[0].PCRSelect = []byte{1, 0, 0, 1}
		}, want: []string{"quote PCR selection", "PCR index 24 is out of range"}},
		{name: "quote selects one bank twice", change: func(a *tpm2.TPMSAttest) {
			q, _ := a.Attested.Quote()
			q.PCRSelect.PCRSelections = append(q.PCRSelect.PCRSelections, q.PCRSelect.PCRSelections[0])
		}, want: []string{"quote PCR selection", "bank sha256 appears twice"}},
		{name: "quote selects an unknown bank", change: func(a *tpm2.TPMSAttest) {
			q, _ := a.Attested.Quote()
			q.PCRSelect.PCRSelections[0].Hash = tpm2.TPMAlgSHA3256
		}, want: []string{"quote PCR selection", "not supported"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newForger(t, tc.attrs)
			hash := tc.hash
			if hash == 0 {
				hash = tpm2.TPMAlgSHA256
			}
			data := f.quote(t, quoteAttest(t, d, pcr0, tc.change), hash, pcrs())
			_, err := pinned(t, f.public()).Appraise(data, d)
			wantErr(t, err, tc.want...)
		})
	}
}

func TestAppraiseAKChain(t *testing.T) {
	tpm := openSimulator(t)
	ak := newAttester(t, tpm, Config{}).AKPublic()
	now := time.Now()
	clock := func() time.Time { return now }
	root, rootKey := newTestCA(t, "AK root", nil)
	inter, interKey := newTestCA(t, "AK intermediate", &issuer{root, rootKey})
	leaf := newTestLeaf(t, ak, &issuer{inter, interKey}, now.Add(24*time.Hour))
	otherRoot, otherKey := newTestCA(t, "other root", nil)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	// The Attester carries the chain in "akchain".
	a := newAttester(t, tpm, Config{AKChain: [][]byte{leaf.Raw, inter.Raw}})
	_, d := newBinding(t)
	data := attest(t, a, d)
	v, err := NewVerifier(Anchors{Roots: []*x509.Certificate{root}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("chain to the root is trusted", func(t *testing.T) {
		claims, err := v.Appraise(data, d)
		if err != nil {
			t.Fatalf("Appraise: %v", err)
		}
		if claims.AKCertificate == nil || !bytes.Equal(claims.AKCertificate.Raw, leaf.Raw) {
			t.Fatal("claims do not carry the AK certificate")
		}
	})
	t.Run("chain to another root", func(t *testing.T) {
		foreign := newTestLeaf(t, ak, &issuer{otherRoot, otherKey}, now.Add(time.Hour))
		bad := mutate(t, data, func(q *Quote) { q.AKChain = [][]byte{foreign.Raw} })
		_, err := v.Appraise(bad, d)
		wantErr(t, err, "akchain does not lead to an AK CA root", "unknown authority")
	})
	t.Run("leaf certifies another key", func(t *testing.T) {
		wrong := newTestLeaf(t, stranger.Public(), &issuer{inter, interKey}, now.Add(time.Hour))
		bad := mutate(t, data, func(q *Quote) { q.AKChain = [][]byte{wrong.Raw, inter.Raw} })
		_, err := v.Appraise(bad, d)
		wantErr(t, err, "akchain leaf certifies", "not the AK")
	})
	t.Run("leaf expired at the verifier's clock", func(t *testing.T) {
		later, err := NewVerifier(Anchors{Roots: []*x509.Certificate{root}, Now: func() time.Time { return now.Add(48 * time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		_, err = later.Appraise(data, d)
		wantErr(t, err, "akchain does not lead to an AK CA root", "expired")
	})
	t.Run("intermediate missing", func(t *testing.T) {
		bad := mutate(t, data, func(q *Quote) { q.AKChain = [][]byte{leaf.Raw} })
		_, err := v.Appraise(bad, d)
		wantErr(t, err, "akchain does not lead to an AK CA root")
	})
	t.Run("chain but no roots configured", func(t *testing.T) {
		_, err := pinned(t, stranger.Public()).Appraise(data, d)
		wantErr(t, err, "is not pinned", "no AK CA root is configured")
	})
	t.Run("garbage certificate", func(t *testing.T) {
		bad := mutate(t, data, func(q *Quote) { q.AKChain = [][]byte{[]byte("not DER")} })
		_, err := v.Appraise(bad, d)
		wantErr(t, err, "akchain[0]")
	})
	t.Run("pinned AK needs no chain", func(t *testing.T) {
		bare := mutate(t, data, func(q *Quote) { q.AKChain = nil })
		if _, err := pinned(t, ak).Appraise(bare, d); err != nil {
			t.Fatalf("Appraise: %v", err)
		}
	})
}
