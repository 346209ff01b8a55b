package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// akTemplate is the public template of the attestation key this package
// creates with TPM2_CreatePrimary: a restricted ECC P-256 signing key whose
// scheme is ECDSA with SHA-256, created and held by the TPM (fixedTPM,
// fixedParent, sensitiveDataOrigin) and usable with an empty password. The
// same template under the same hierarchy seed gives the same key on every
// call, so the AK needs no storage.
func akTemplate() tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:            true,
			FixedParent:         true,
			SensitiveDataOrigin: true,
			UserWithAuth:        true,
			NoDA:                true,
			Restricted:          true,
			SignEncrypt:         true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme: tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA,
					&tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
	}
}

// Bounds on RSA attestation keys.
const (
	minRSABits = 2048
	maxRSABits = 4096
)

// akKey is a checked attestation key.
type akKey struct {
	// public is the decoded TPMT_PUBLIC.
	public *tpm2.TPMTPublic
	// key is its public key (*ecdsa.PublicKey or *rsa.PublicKey).
	key crypto.PublicKey
	// scheme and hash are the signing scheme fixed by the key, or
	// TPM_ALG_NULL when the key leaves the choice to the caller.
	scheme tpm2.TPMAlgID
	hash   tpm2.TPMAlgID
}

// parseAK decodes a TPMT_PUBLIC and checks that it is a key the TPM can only
// use to sign what it generated itself: a restricted signing key (restricted
// and sign set, decrypt clear) that never leaves the TPM (fixedTPM), of type
// ECC on P-256, P-384 or P-521, or RSA of 2048 to 4096 bits.
func parseAK(b []byte) (*akKey, error) {
	pub, err := UnmarshalExact[tpm2.TPMTPublic](b)
	if err != nil {
		return nil, fmt.Errorf("not a TPMT_PUBLIC: %w", err)
	}
	attrs := pub.ObjectAttributes
	switch {
	case !attrs.Restricted:
		return nil, errors.New("the key is not restricted, so the TPM would sign data it did not generate")
	case !attrs.SignEncrypt:
		return nil, errors.New("the key does not have the sign attribute")
	case attrs.Decrypt:
		return nil, errors.New("the key has the decrypt attribute; an AK must be a signing key only")
	case !attrs.FixedTPM:
		return nil, errors.New("the key is not fixedTPM, so it may exist outside the TPM")
	}

	key, err := PublicKey(pub)
	if err != nil {
		return nil, err
	}
	ak := &akKey{public: pub, key: key}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		parms, err := pub.Parameters.ECCDetail()
		if err != nil {
			return nil, fmt.Errorf("ECC parameters: %w", err)
		}
		ak.scheme = parms.Scheme.Scheme
		if ak.scheme != tpm2.TPMAlgNull {
			if ak.scheme != tpm2.TPMAlgECDSA {
				return nil, fmt.Errorf("ECC signing scheme 0x%04x is not supported, want ECDSA", uint16(ak.scheme))
			}
			d, err := parms.Scheme.Details.ECDSA()
			if err != nil {
				return nil, fmt.Errorf("ECDSA scheme: %w", err)
			}
			ak.hash = d.HashAlg
		}
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("RSA key of %d bits, want %d to %d", bits, minRSABits, maxRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return nil, fmt.Errorf("RSA public exponent %d is not valid", k.E)
		}
		parms, err := pub.Parameters.RSADetail()
		if err != nil {
			return nil, fmt.Errorf("RSA parameters: %w", err)
		}
		ak.scheme = parms.Scheme.Scheme
		switch ak.scheme {
		case tpm2.TPMAlgNull:
		case tpm2.TPMAlgRSASSA:
			d, err := parms.Scheme.Details.RSASSA()
			if err != nil {
				return nil, fmt.Errorf("RSASSA scheme: %w", err)
			}
			ak.hash = d.HashAlg
		case tpm2.TPMAlgRSAPSS:
			d, err := parms.Scheme.Details.RSAPSS()
			if err != nil {
				return nil, fmt.Errorf("RSAPSS scheme: %w", err)
			}
			ak.hash = d.HashAlg
		default:
			return nil, fmt.Errorf("RSA signing scheme 0x%04x is not supported, want RSASSA or RSAPSS", uint16(ak.scheme))
		}
	}
	return ak, nil
}

// PublicKey returns the public key of a TPMT_PUBLIC of type ECC (an
// *ecdsa.PublicKey whose point is on its curve) or RSA (an *rsa.PublicKey).
// It says nothing about what the key may do: see the object attributes.
func PublicKey(pub *tpm2.TPMTPublic) (crypto.PublicKey, error) {
	switch pub.Type {
	case tpm2.TPMAlgECC:
		parms, err := pub.Parameters.ECCDetail()
		if err != nil {
			return nil, fmt.Errorf("ECC parameters: %w", err)
		}
		point, err := pub.Unique.ECC()
		if err != nil {
			return nil, fmt.Errorf("ECC point: %w", err)
		}
		key, err := tpm2.ECDSAPub(parms, point)
		if err != nil {
			return nil, fmt.Errorf("ECC key: %w", err)
		}
		// tpm2.ECDSAPub does not check the point; the ecdh conversion does.
		if _, err := key.ECDH(); err != nil {
			return nil, fmt.Errorf("ECC key: %w", err)
		}
		return key, nil
	case tpm2.TPMAlgRSA:
		parms, err := pub.Parameters.RSADetail()
		if err != nil {
			return nil, fmt.Errorf("RSA parameters: %w", err)
		}
		n, err := pub.Unique.RSA()
		if err != nil {
			return nil, fmt.Errorf("RSA modulus: %w", err)
		}
		key, err := tpm2.RSAPub(parms, n)
		if err != nil {
			return nil, fmt.Errorf("RSA key: %w", err)
		}
		return key, nil
	}
	return nil, fmt.Errorf("key type 0x%04x is not supported, want ECC or RSA", uint16(pub.Type))
}

// AKFingerprint returns the hex SHA-256 of the key's SubjectPublicKeyInfo
// DER: the form in which Claims name an AK and operators pin one.
func AKFingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("AK fingerprint: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// fingerprintOrType names a key in an error message.
func fingerprintOrType(pub crypto.PublicKey) string {
	if fp, err := AKFingerprint(pub); err == nil {
		return "sha256:" + fp
	}
	return fmt.Sprintf("%T", pub)
}

// sameKey compares public keys by value.
func sameKey(a, b crypto.PublicKey) bool {
	switch a := a.(type) {
	case *ecdsa.PublicKey:
		return a.Equal(b)
	case *rsa.PublicKey:
		return a.Equal(b)
	}
	return false
}

// UnmarshalExact decodes a TPM structure with go-tpm and requires that the
// structure uses every byte and that go-tpm encodes it back to the same
// bytes, so what was checked is exactly what was signed. A panic inside the
// decoder is turned into an error: these bytes come from the network.
func UnmarshalExact[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](b []byte) (out *T, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("malformed TPM structure (%v)", r)
		}
	}()
	v, err := tpm2.Unmarshal[T, P](b)
	if err != nil {
		return nil, err
	}
	if again := tpm2.Marshal(*v); !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%d bytes, of which the structure uses %d or encodes them differently", len(b), len(again))
	}
	return v, nil
}
