package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"
)

// signatureHash returns the hash algorithm a TPMT_SIGNATURE was made with,
// for the schemes this package verifies: ECDSA, RSASSA and RSAPSS.
func signatureHash(sig *tpm2.TPMTSignature) (tpm2.TPMAlgID, error) {
	switch sig.SigAlg {
	case tpm2.TPMAlgECDSA:
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return 0, err
		}
		return s.Hash, nil
	case tpm2.TPMAlgRSASSA:
		s, err := sig.Signature.RSASSA()
		if err != nil {
			return 0, err
		}
		return s.Hash, nil
	case tpm2.TPMAlgRSAPSS:
		s, err := sig.Signature.RSAPSS()
		if err != nil {
			return 0, err
		}
		return s.Hash, nil
	default:
		return 0, fmt.Errorf("signature scheme 0x%04x is not supported, want ECDSA, RSASSA or RSAPSS", uint16(sig.SigAlg))
	}
}

// verifySignature checks that sig is ak's signature over msg. The scheme
// must suit the key type and, when the key fixes a scheme, be that scheme
// and hash; the hash must be SHA-256, SHA-384 or SHA-512. It returns the
// hash, which is also the one TPM2_Quote used for pcrDigest.
func verifySignature(ak *akKey, sig *tpm2.TPMTSignature, msg []byte) (crypto.Hash, error) {
	hashAlg, err := signatureHash(sig)
	if err != nil {
		return 0, err
	}
	switch hashAlg {
	case tpm2.TPMAlgSHA256, tpm2.TPMAlgSHA384, tpm2.TPMAlgSHA512:
	default:
		return 0, fmt.Errorf("signature hash 0x%04x is not supported, want SHA-256, SHA-384 or SHA-512", uint16(hashAlg))
	}
	if ak.scheme != tpm2.TPMAlgNull && (sig.SigAlg != ak.scheme || hashAlg != ak.hash) {
		return 0, fmt.Errorf("signature scheme 0x%04x/0x%04x differs from the AK's 0x%04x/0x%04x",
			uint16(sig.SigAlg), uint16(hashAlg), uint16(ak.scheme), uint16(ak.hash))
	}
	h, err := hashAlg.Hash()
	if err != nil {
		return 0, err
	}
	hh := h.New()
	hh.Write(msg)
	digest := hh.Sum(nil)

	switch key := ak.key.(type) {
	case *ecdsa.PublicKey:
		if sig.SigAlg != tpm2.TPMAlgECDSA {
			return 0, fmt.Errorf("signature scheme 0x%04x does not suit an ECC key", uint16(sig.SigAlg))
		}
		s, _ := sig.Signature.ECDSA() // signatureHash decoded it
		r, ss := new(big.Int).SetBytes(s.SignatureR.Buffer), new(big.Int).SetBytes(s.SignatureS.Buffer)
		if !ecdsa.Verify(key, digest, r, ss) {
			return 0, errors.New("ECDSA signature does not verify under the AK")
		}
	case *rsa.PublicKey:
		switch sig.SigAlg {
		case tpm2.TPMAlgRSASSA:
			s, _ := sig.Signature.RSASSA()
			if err := rsa.VerifyPKCS1v15(key, h, digest, s.Sig.Buffer); err != nil {
				return 0, fmt.Errorf("RSASSA signature does not verify under the AK: %w", err)
			}
		case tpm2.TPMAlgRSAPSS:
			s, _ := sig.Signature.RSAPSS()
			if err := rsa.VerifyPSS(key, h, digest, s.Sig.Buffer, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}); err != nil {
				return 0, fmt.Errorf("RSAPSS signature does not verify under the AK: %w", err)
			}
		default:
			return 0, fmt.Errorf("signature scheme 0x%04x does not suit an RSA key", uint16(sig.SigAlg))
		}
	default:
		return 0, fmt.Errorf("AK type %T is not supported", ak.key)
	}
	return h, nil
}
