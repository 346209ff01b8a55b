package tpm

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

func TestAttestRejects(t *testing.T) {
	tpm := openSimulator(t)
	a := newAttester(t, tpm, Config{})
	ctx := context.Background()

	t.Run("qualifyingData too long", func(t *testing.T) {
		_, err := a.Attest(ctx, make([]byte, MaxQualifyingData+1))
		wantErr(t, err, "qualifyingData is 35 bytes, at most 34 fit")
	})
	t.Run("qualifyingData empty", func(t *testing.T) {
		_, err := a.Attest(ctx, nil)
		wantErr(t, err, "qualifyingData is empty")
	})
	t.Run("context cancelled", func(t *testing.T) {
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_, err := a.Attest(cancelled, make([]byte, 32))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Attest with a cancelled context: %v, want context.Canceled", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		b, err := NewAttester(tpm, Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		_, err = b.Attest(ctx, make([]byte, 32))
		wantErr(t, err, "attester is closed")
		if err := b.Close(); err != nil {
			t.Fatalf("a second Close: %v", err)
		}
	})
	t.Run("the longest qualifyingData fits", func(t *testing.T) {
		d := bytes.Repeat([]byte{0x5a}, MaxQualifyingData)
		if _, err := pinned(t, a.AKPublic()).Appraise(attest(t, a, d), d); err != nil {
			t.Fatalf("Appraise: %v", err)
		}
	})
}

func TestNewAttesterRejects(t *testing.T) {
	tpm := openSimulator(t)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root, rootKey := newTestCA(t, "root", nil)
	notForAK := newTestLeaf(t, stranger.Public(), &issuer{root, rootKey}, time.Now().Add(time.Hour))
	signing := persist(t, tpm, 0x81000020, rsaTemplate(tpm2.TPMAlgRSASSA, func(a *tpm2.TPMAObject) { a.Restricted = false }))

	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"empty PCR selection", Config{PCRs: PCRSelection{}}, []string{"selects no PCRs"}},
		{"PCR out of range", Config{PCRs: PCRSelection{BankSHA256: {24}}}, []string{"PCR index 24 is out of range"}},
		{"unknown hierarchy", Config{Hierarchy: 7}, []string{"hierarchy 7"}},
		{"wrong owner password", Config{HierarchyAuth: []byte("wrong")}, []string{"creating the AK"}},
		{"handle not persistent", Config{PersistentHandle: 0x80000001}, []string{"not a persistent handle"}},
		{"no key at the handle", Config{PersistentHandle: 0x81000099}, []string{"reading the AK at 0x81000099"}},
		{"persistent key not restricted", Config{PersistentHandle: signing}, []string{"cannot be an AK", "not restricted"}},
		{"chain for another key", Config{AKChain: [][]byte{notForAK.Raw}}, []string{"leaf certifies", "not the AK"}},
		{"chain not DER", Config{AKChain: [][]byte{[]byte("junk")}}, []string{"AK chain certificate 0"}},
		{"chain too long", Config{AKChain: make([][]byte, MaxAKChain+1)}, []string{"at most 4 allowed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAttester(tpm, tc.cfg)
			if err == nil {
				a.Close()
			}
			wantErr(t, err, tc.want...)
		})
	}
}

func TestAttestReadsCurrentPCRs(t *testing.T) {
	tpm := openSimulator(t)
	a := newAttester(t, tpm, Config{PCRs: PCRSelection{BankSHA256: {7, 16}}})
	v := pinned(t, a.AKPublic())
	_, d := newBinding(t)
	before, err := v.Appraise(attest(t, a, d), d)
	if err != nil {
		t.Fatal(err)
	}

	event := sha256.Sum256([]byte("a measured boot event"))
	_, err = tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(16), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: event[:]}}},
	}.Execute(tpm)
	if err != nil {
		t.Fatalf("TPM2_PCR_Extend: %v", err)
	}
	after, err := v.Appraise(attest(t, a, d), d)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(append(bytes.Clone(before.PCRs[BankSHA256][16]), event[:]...))
	if !bytes.Equal(after.PCRs[BankSHA256][16], want[:]) {
		t.Fatalf("PCR 16 after the extend is %x, want %x", after.PCRs[BankSHA256][16], want)
	}
	if !bytes.Equal(after.PCRs[BankSHA256][7], before.PCRs[BankSHA256][7]) {
		t.Fatal("PCR 7 changed without an extend")
	}
}

func TestAttestManyPCRs(t *testing.T) {
	// 48 PCRs in two banks: more than one TPM2_PCR_Read returns.
	f := newFixture(t, Config{PCRs: mustSelection(t, "sha1:0-23+sha256:0-23")})
	claims, err := pinned(t, f.a.AKPublic()).Appraise(f.data, f.d)
	if err != nil {
		t.Fatal(err)
	}
	if len(claims.PCRs[BankSHA1]) != 24 || len(claims.PCRs[BankSHA256]) != 24 {
		t.Fatalf("claims hold %d sha1 and %d sha256 PCRs, want 24 each", len(claims.PCRs[BankSHA1]), len(claims.PCRs[BankSHA256]))
	}
}

func TestAKIsDeterministic(t *testing.T) {
	tpm := openSimulator(t)
	first := newAttester(t, tpm, Config{}).AKPublic()
	second := newAttester(t, tpm, Config{}).AKPublic()
	endorsement := newAttester(t, tpm, Config{Hierarchy: HierarchyEndorsement}).AKPublic()
	if !sameKey(first, second) {
		t.Fatal("the same template under the owner hierarchy gave two AKs")
	}
	if sameKey(first, endorsement) {
		t.Fatal("the owner and endorsement hierarchies gave the same AK")
	}
}

func TestPersistentAK(t *testing.T) {
	tpm := openSimulator(t)
	for i, tc := range []struct {
		name     string
		template tpm2.TPMTPublic
	}{
		{"RSASSA", rsaTemplate(tpm2.TPMAlgRSASSA, nil)},
		{"RSAPSS", rsaTemplate(tpm2.TPMAlgRSAPSS, nil)},
		{"ECDSA P-256", akTemplate()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			handle := persist(t, tpm, 0x81000010+uint32(i), tc.template)
			a := newAttester(t, tpm, Config{PersistentHandle: handle})
			_, d := newBinding(t)
			claims, err := pinned(t, a.AKPublic()).Appraise(attest(t, a, d), d)
			if err != nil {
				t.Fatalf("Appraise: %v", err)
			}
			if _, isRSA := claims.AK.(*rsa.PublicKey); isRSA != (tc.template.Type == tpm2.TPMAlgRSA) {
				t.Fatalf("claims name a %T", claims.AK)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := (tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(handle)}).Execute(tpm); err != nil {
				t.Fatalf("the persistent AK is gone after Close: %v", err)
			}
		})
	}
}

// persist creates a primary key from template under the owner hierarchy,
// makes it persistent at handle, and returns the handle.
func persist(t testing.TB, tpm transport.TPM, handle uint32, template tpm2.TPMTPublic) uint32 {
	t.Helper()
	owner := tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: owner, InPublic: tpm2.New2B(template)}.Execute(tpm)
	if err != nil {
		t.Fatalf("TPM2_CreatePrimary: %v", err)
	}
	defer tpm2.FlushContext{FlushHandle: rsp.ObjectHandle}.Execute(tpm)
	_, err = tpm2.EvictControl{
		Auth:             owner,
		ObjectHandle:     tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name},
		PersistentHandle: tpm2.TPMHandle(handle),
	}.Execute(tpm)
	if err != nil {
		t.Fatalf("TPM2_EvictControl: %v", err)
	}
	return handle
}

// rsaTemplate is an RSA-2048 restricted signing key with scheme and SHA-256,
// after attrs (if not nil) has changed its attributes.
func rsaTemplate(scheme tpm2.TPMAlgID, attrs func(*tpm2.TPMAObject)) tpm2.TPMTPublic {
	pub := akTemplate()
	if attrs != nil {
		attrs(&pub.ObjectAttributes)
	}
	pub.Type = tpm2.TPMAlgRSA
	details := tpm2.NewTPMUAsymScheme(scheme, &tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA256})
	if scheme == tpm2.TPMAlgRSAPSS {
		details = tpm2.NewTPMUAsymScheme(scheme, &tpm2.TPMSSigSchemeRSAPSS{HashAlg: tpm2.TPMAlgSHA256})
	}
	pub.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme:    tpm2.TPMTRSAScheme{Scheme: scheme, Details: details},
		KeyBits:   2048,
	})
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{})
	return pub
}

// mustSelection parses a PCR selection.
func mustSelection(t testing.TB, s string) PCRSelection {
	t.Helper()
	sel, err := ParsePCRSelection(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}
