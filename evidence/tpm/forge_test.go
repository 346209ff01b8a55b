package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// forger holds a software ECC P-256 key dressed as an AK: its TPMT_PUBLIC
// claims whatever attributes the test wants. With the key pinned, a test can
// sign TPMS_ATTEST bytes no TPM would produce and reach the checks that come
// after the signature.
type forger struct {
	key *ecdsa.PrivateKey
	ak  []byte // TPMT_PUBLIC
}

// newForger makes a forger whose TPMT_PUBLIC is akTemplate with the key's
// point, after attrs (if not nil) has changed the attributes.
func newForger(t testing.TB, attrs func(*tpm2.TPMAObject)) *forger {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub := akTemplate()
	if attrs != nil {
		attrs(&pub.ObjectAttributes)
	}
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: key.X.FillBytes(make([]byte, 32))},
		Y: tpm2.TPM2BECCParameter{Buffer: key.Y.FillBytes(make([]byte, 32))},
	})
	return &forger{key: key, ak: tpm2.Marshal(pub)}
}

// sign returns a TPMT_SIGNATURE (ECDSA with hash) over msg.
func (f *forger) sign(t testing.TB, msg []byte, hash tpm2.TPMAlgID) []byte {
	t.Helper()
	h, err := hash.Hash()
	if err != nil {
		t.Fatal(err)
	}
	hh := h.New()
	hh.Write(msg)
	r, s, err := ecdsa.Sign(rand.Reader, f.key, hh.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return tpm2.Marshal(tpm2.TPMTSignature{
		SigAlg: tpm2.TPMAlgECDSA,
		Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
			Hash:       hash,
			SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()},
			SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()},
		}),
	})
}

// quote builds a quote map for attest, signed by the forger, with pcrs.
func (f *forger) quote(t testing.TB, attest []byte, hash tpm2.TPMAlgID, pcrs PCRValues) []byte {
	t.Helper()
	q := &Quote{AK: f.ak, Quoted: attest, Sig: f.sign(t, attest, hash), PCRs: pcrs}
	out, err := q.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// public returns the forger's public key, to pin.
func (f *forger) public() crypto.PublicKey { return f.key.Public() }

// quoteAttest builds the TPMS_ATTEST of a quote over PCRs sha256:0 = pcr0
// with extraData d, as a TPM would, and lets change alter it first.
func quoteAttest(t testing.TB, d, pcr0 []byte, change func(*tpm2.TPMSAttest)) []byte {
	t.Helper()
	digest, err := pcrDigest(crypto.SHA256, []selectedPCR{{BankSHA256, 0}}, PCRValues{BankSHA256: {0: pcr0}})
	if err != nil {
		t.Fatal(err)
	}
	a := tpm2.TPMSAttest{
		Magic:     tpm2.TPMGeneratedValue,
		Type:      tpm2.TPMSTAttestQuote,
		ExtraData: tpm2.TPM2BData{Buffer: d},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: PCRSelection{BankSHA256: {0}}.tpml(),
			PCRDigest: tpm2.TPM2BDigest{Buffer: digest},
		}),
	}
	if change != nil {
		change(&a)
	}
	return tpm2.Marshal(a)
}
