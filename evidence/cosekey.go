package evidence

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// RSA key sizes accepted in a kc (docs/protocol.md §2).
const (
	MinRSABits = 2048
	MaxRSABits = 4096
)

// coseKeyTypeRSA is kty 3 (RFC 8230 §4); go-cose v1.3.0 has no constant for it.
const coseKeyTypeRSA cose.KeyType = 3

// RFC 8230 §4 labels of an RSA COSE_Key.
const (
	coseLabelRSAN int64 = -1
	coseLabelRSAE int64 = -2
)

// ErrUnsupportedKey reports a public key type or size that a kc cannot carry.
var ErrUnsupportedKey = errors.New("unsupported key")

// CheckKey reports whether pub is a key a kc may name: EC P-256 or P-384,
// Ed25519, or RSA of 2048 to 4096 bits with an odd public exponent of at
// least 65537. The error names what is wrong.
func CheckKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("%w: EC curve %s (want P-256 or P-384)", ErrUnsupportedKey, k.Curve.Params().Name)
		}
		if _, err := k.ECDH(); err != nil {
			return fmt.Errorf("%w: EC point is not on %s", ErrUnsupportedKey, k.Curve.Params().Name)
		}
		return nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 key is %d bytes, want %d", ErrUnsupportedKey, len(k), ed25519.PublicKeySize)
		}
		return nil
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits < MinRSABits || bits > MaxRSABits {
			return fmt.Errorf("%w: RSA key of %d bits (want %d to %d)", ErrUnsupportedKey, bits, MinRSABits, MaxRSABits)
		}
		if k.E < 65537 || k.E%2 == 0 {
			return fmt.Errorf("%w: RSA public exponent %d (want odd and at least 65537)", ErrUnsupportedKey, k.E)
		}
		return nil
	case nil:
		return fmt.Errorf("%w: no key", ErrUnsupportedKey)
	default:
		return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
}

// coseKeyFromPublic turns a checked public key into the COSE_Key of
// docs/protocol.md §2: no alg, no kid, coordinates at full length.
func coseKeyFromPublic(pub crypto.PublicKey) (*cose.Key, error) {
	if err := CheckKey(pub); err != nil {
		return nil, err
	}
	if k, ok := pub.(*rsa.PublicKey); ok {
		return &cose.Key{
			Type: coseKeyTypeRSA,
			Params: map[any]any{
				coseLabelRSAN: k.N.Bytes(),
				coseLabelRSAE: big.NewInt(int64(k.E)).Bytes(),
			},
		}, nil
	}
	ck, err := cose.NewKeyFromPublic(pub)
	if err != nil {
		return nil, fmt.Errorf("COSE_Key from %T: %w", pub, err)
	}
	ck.Algorithm = cose.AlgorithmReserved // the kc carries no alg (docs/protocol.md §2)
	return ck, nil
}

// algsFor lists the COSE alg values (docs/protocol.md §7) that may accompany a key.
func algsFor(kty cose.KeyType, crv cose.Curve) []cose.Algorithm {
	switch {
	case kty == cose.KeyTypeEC2 && crv == cose.CurveP256:
		return []cose.Algorithm{cose.AlgorithmES256}
	case kty == cose.KeyTypeEC2 && crv == cose.CurveP384:
		return []cose.Algorithm{cose.AlgorithmES384}
	case kty == cose.KeyTypeOKP && crv == cose.CurveEd25519:
		return []cose.Algorithm{cose.AlgorithmEdDSA}
	}
	return nil
}

// publicFromCOSEKey parses a COSE_Key (its CBOR bytes) strictly: only the forms
// and parameters docs/protocol.md §2 and §7 allow, coordinates at exactly the
// curve's size, and a key that CheckKey accepts.
func publicFromCOSEKey(raw []byte) (crypto.PublicKey, error) {
	var labels map[int64]cbor.RawMessage
	if err := strictDec.Unmarshal(raw, &labels); err != nil {
		return nil, fmt.Errorf("COSE_Key: %w", err)
	}
	var kty int64
	if err := strictDec.Unmarshal(labels[1], &kty); err != nil || labels[1] == nil {
		return nil, errors.New("COSE_Key: kty (1) missing or not an integer")
	}
	switch cose.KeyType(kty) {
	case coseKeyTypeRSA:
		return publicFromRSACOSEKey(raw)
	case cose.KeyTypeEC2, cose.KeyTypeOKP:
	default:
		return nil, fmt.Errorf("%w: COSE_Key kty %d (want 1 OKP, 2 EC2 or 3 RSA)", ErrUnsupportedKey, kty)
	}
	// go-cose v1.3.0 converts the curve with an unchecked type assertion and
	// panics when it is not an integer: check it here first.
	if crvRaw, ok := labels[cose.KeyLabelEC2Curve]; ok {
		var crv int64
		if err := strictDec.Unmarshal(crvRaw, &crv); err != nil {
			return nil, fmt.Errorf("COSE_Key: crv (-1) is not an integer: %w", err)
		}
	}
	ck, err := unmarshalCOSEKey(raw)
	if err != nil {
		return nil, fmt.Errorf("COSE_Key: %w", err)
	}
	if ck.Ops != nil {
		return nil, errors.New("COSE_Key: key_ops (4) is not allowed")
	}
	if ck.BaseIV != nil {
		return nil, errors.New("COSE_Key: Base IV (5) is not allowed")
	}

	var (
		pub     crypto.PublicKey
		allowed map[int64]bool
		crv     cose.Curve
	)
	switch ck.Type {
	case cose.KeyTypeEC2:
		var x, y []byte
		crv, x, y, _ = ck.EC2()
		var curve elliptic.Curve
		switch crv {
		case cose.CurveP256:
			curve = elliptic.P256()
		case cose.CurveP384:
			curve = elliptic.P384()
		default:
			return nil, fmt.Errorf("%w: COSE_Key EC2 curve %d (want 1 P-256 or 2 P-384)", ErrUnsupportedKey, int64(crv))
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("COSE_Key: EC2 x is %d bytes and y %d bytes, want %d each", len(x), len(y), size)
		}
		point := append(append([]byte{4}, x...), y...)
		k, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("COSE_Key: EC2 point: %w", err)
		}
		pub = k
		allowed = map[int64]bool{cose.KeyLabelEC2Curve: true, cose.KeyLabelEC2X: true, cose.KeyLabelEC2Y: true}
	case cose.KeyTypeOKP:
		var x []byte
		crv, x, _ = ck.OKP()
		if crv != cose.CurveEd25519 {
			return nil, fmt.Errorf("%w: COSE_Key OKP curve %d (want 6 Ed25519)", ErrUnsupportedKey, int64(crv))
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("COSE_Key: Ed25519 x is %d bytes, want %d", len(x), ed25519.PublicKeySize)
		}
		pub = ed25519.PublicKey(x)
		allowed = map[int64]bool{cose.KeyLabelOKPCurve: true, cose.KeyLabelOKPX: true}
	default:
		return nil, fmt.Errorf("%w: COSE_Key kty %d (want 1 OKP, 2 EC2 or 3 RSA)", ErrUnsupportedKey, int64(ck.Type))
	}

	for label := range ck.Params {
		l, ok := label.(int64)
		if !ok || !allowed[l] {
			return nil, fmt.Errorf("COSE_Key: parameter %v is not allowed for kty %d", label, int64(ck.Type))
		}
	}
	if ck.Algorithm != cose.AlgorithmReserved {
		ok := false
		for _, a := range algsFor(ck.Type, crv) {
			ok = ok || a == ck.Algorithm
		}
		if !ok {
			return nil, fmt.Errorf("COSE_Key: alg %d does not fit kty %d", int64(ck.Algorithm), int64(ck.Type))
		}
	}
	if err := CheckKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// unmarshalCOSEKey runs go-cose's decoder, turning a panic inside it into an
// error: input from the network must never take the process down, and
// go-cose v1.3.0 has unchecked type assertions on some labels.
func unmarshalCOSEKey(raw []byte) (ck *cose.Key, err error) {
	defer func() {
		if r := recover(); r != nil {
			ck, err = nil, fmt.Errorf("malformed (go-cose: %v)", r)
		}
	}()
	ck = new(cose.Key)
	if err := ck.UnmarshalCBOR(raw); err != nil {
		return nil, err
	}
	return ck, nil
}

// rsaCOSEKey is an RSA COSE_Key (RFC 8230 §4) with the optional kid and alg of
// docs/protocol.md §7. go-cose v1.3.0 cannot parse RSA keys (its Key rejects an
// alg on kty 3 and has no RSA conversion), so RSA keys are decoded here with the
// CBOR library in the strict mode, which rejects every other label.
type rsaCOSEKey struct {
	Kty int64  `cbor:"1,keyasint"`
	Kid []byte `cbor:"2,keyasint,omitempty"`
	Alg int64  `cbor:"3,keyasint,omitempty"`
	N   []byte `cbor:"-1,keyasint"`
	E   []byte `cbor:"-2,keyasint"`
}

func publicFromRSACOSEKey(raw []byte) (crypto.PublicKey, error) {
	var k rsaCOSEKey
	if err := strictDec.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("COSE_Key: RSA: %w", err)
	}
	if len(k.N) == 0 || len(k.E) == 0 {
		return nil, errors.New("COSE_Key: RSA key needs n (-1) and e (-2) as byte strings")
	}
	if k.N[0] == 0 || k.E[0] == 0 {
		return nil, errors.New("COSE_Key: RSA n and e must not have leading zero bytes")
	}
	if len(k.E) > 4 {
		return nil, fmt.Errorf("%w: RSA public exponent of %d bytes", ErrUnsupportedKey, len(k.E))
	}
	if k.Alg != 0 && k.Alg != int64(cose.AlgorithmPS256) && k.Alg != int64(cose.AlgorithmRS256) {
		return nil, fmt.Errorf("COSE_Key: alg %d does not fit kty 3 (want -37 PS256 or -257 RS256)", k.Alg)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(k.N), E: int(new(big.Int).SetBytes(k.E).Int64())}
	if err := CheckKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}
