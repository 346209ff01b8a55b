package evidence

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Key-confirmation claims set (docs/protocol.md §2): a UCCS (RFC 9781, CBOR tag
// 601) around an EAT claims map that names the certificate key and the nonce.
const (
	// TagUCCS is the CBOR tag of an Unprotected CWT Claims Set (RFC 9781).
	TagUCCS = 601
	// MediaTypeKC is the media type of the kc record in the bundle.
	MediaTypeKC = "application/uccs+cbor"
	// MaxKCSize bounds the kc bytes (tag header included).
	MaxKCSize = 1 << 10
	// NonceSize is the size of N = SHA-256(keyAuthorization).
	NonceSize = 32
	// IntendedUseIssuance is the EAT intuse value "certificate issuance".
	IntendedUseIssuance = 4
)

// EAT and CWT claim keys used in the kc.
const (
	claimIAT    = 6   // iat (RFC 8392)
	claimCnf    = 8   // cnf (RFC 8747)
	claimNonce  = 10  // eat_nonce (RFC 9711)
	claimIntUse = 275 // intuse (RFC 9711)
	cnfCOSEKey  = 1   // COSE_Key member of cnf (RFC 8747 §3.1)
)

// Freshness bounds on the kc's iat, checked at appraisal (docs/protocol.md §7).
const (
	MaxKCFutureSkew = 5 * time.Minute
	MaxKCAge        = 10 * time.Minute
)

// KC is a parsed key-confirmation claims set.
type KC struct {
	// Nonce is eat_nonce: N, the SHA-256 of the ACME key authorization.
	Nonce []byte
	// Key is the cnf COSE_Key: the public key of the certificate request.
	Key crypto.PublicKey
	// IssuedAt is iat, to the second.
	IssuedAt time.Time
	// Raw holds the exact bytes the kc was parsed from; D is computed over them.
	Raw []byte
}

// kcClaims is the claims map inside the tag, as written by NewKC.
type kcClaims struct {
	IssuedAt int64                   `cbor:"6,keyasint"`
	Cnf      map[int]cbor.RawMessage `cbor:"8,keyasint"`
	Nonce    []byte                  `cbor:"10,keyasint"`
	IntUse   int64                   `cbor:"275,keyasint"`
}

// NewKC encodes the kc for pub and nonce, issued at now, deterministically.
func NewKC(pub crypto.PublicKey, nonce []byte, now time.Time) ([]byte, error) {
	if len(nonce) != NonceSize {
		return nil, fmt.Errorf("kc: eat_nonce is %d bytes, want %d", len(nonce), NonceSize)
	}
	ck, err := coseKeyFromPublic(pub)
	if err != nil {
		return nil, fmt.Errorf("kc: cnf: %w", err)
	}
	key, err := ck.MarshalCBOR()
	if err != nil {
		return nil, fmt.Errorf("kc: cnf: encoding COSE_Key: %w", err)
	}
	claims := kcClaims{
		IssuedAt: now.Unix(),
		Cnf:      map[int]cbor.RawMessage{cnfCOSEKey: key},
		Nonce:    nonce,
		IntUse:   IntendedUseIssuance,
	}
	b, err := detEnc.Marshal(cbor.Tag{Number: TagUCCS, Content: claims})
	if err != nil {
		return nil, fmt.Errorf("kc: encoding: %w", err)
	}
	if len(b) > MaxKCSize {
		return nil, fmt.Errorf("kc: %d bytes, over the limit of %d", len(b), MaxKCSize)
	}
	return b, nil
}

// ParseKC decodes a kc strictly (docs/protocol.md §2 and §7): a tag-601 map
// with eat_nonce of 32 bytes, cnf holding exactly one COSE_Key of a supported
// type, an integer iat and intuse 4. Unknown extra claims are accepted; duplicate
// keys, indefinite lengths and trailing bytes are not.
func ParseKC(b []byte) (*KC, error) {
	if len(b) > MaxKCSize {
		return nil, fmt.Errorf("kc: %d bytes, over the limit of %d", len(b), MaxKCSize)
	}
	var tag cbor.RawTag
	if err := strictDec.Unmarshal(b, &tag); err != nil {
		return nil, fmt.Errorf("kc: not a CBOR tag %d: %w", TagUCCS, err)
	}
	if tag.Number != TagUCCS {
		return nil, fmt.Errorf("kc: CBOR tag %d, want %d (UCCS)", tag.Number, TagUCCS)
	}
	// Claim keys are integers or text (RFC 8392 §3); unknown claims are allowed.
	var claims map[any]cbor.RawMessage
	if err := strictDec.Unmarshal(tag.Content, &claims); err != nil {
		return nil, fmt.Errorf("kc: claims map: %w", err)
	}

	kc := &KC{Raw: bytes.Clone(b)}
	for _, c := range []struct {
		key  int64
		name string
	}{{claimNonce, "eat_nonce (10)"}, {claimCnf, "cnf (8)"}, {claimIAT, "iat (6)"}, {claimIntUse, "intuse (275)"}} {
		if _, ok := claims[c.key]; !ok {
			return nil, fmt.Errorf("kc: claim %s is missing", c.name)
		}
	}

	if err := decodeBstr(claims[int64(claimNonce)], &kc.Nonce); err != nil {
		return nil, fmt.Errorf("kc: eat_nonce: %w", err)
	}
	if len(kc.Nonce) != NonceSize {
		return nil, fmt.Errorf("kc: eat_nonce is %d bytes, want %d", len(kc.Nonce), NonceSize)
	}

	var iat int64
	if err := strictDec.Unmarshal(claims[int64(claimIAT)], &iat); err != nil {
		return nil, fmt.Errorf("kc: iat is not an integer: %w", err)
	}
	kc.IssuedAt = time.Unix(iat, 0).UTC()

	var intUse int64
	if err := strictDec.Unmarshal(claims[int64(claimIntUse)], &intUse); err != nil {
		return nil, fmt.Errorf("kc: intuse is not an integer: %w", err)
	}
	if intUse != IntendedUseIssuance {
		return nil, fmt.Errorf("kc: intuse is %d, want %d (certificate issuance)", intUse, IntendedUseIssuance)
	}

	var cnf map[int64]cbor.RawMessage
	if err := strictDec.Unmarshal(claims[int64(claimCnf)], &cnf); err != nil {
		return nil, fmt.Errorf("kc: cnf: %w", err)
	}
	if len(cnf) != 1 || cnf[cnfCOSEKey] == nil {
		return nil, errors.New("kc: cnf must hold exactly one member, COSE_Key (1)")
	}
	var err error
	if kc.Key, err = publicFromCOSEKey(cnf[cnfCOSEKey]); err != nil {
		return nil, fmt.Errorf("kc: cnf: %w", err)
	}
	return kc, nil
}

// CheckFreshness rejects a kc whose iat lies more than MaxKCFutureSkew after
// now or more than MaxKCAge before it.
func (kc *KC) CheckFreshness(now time.Time) error {
	if kc.IssuedAt.After(now.Add(MaxKCFutureSkew)) {
		return fmt.Errorf("kc: iat %s is more than %s in the future", kc.IssuedAt.Format(time.RFC3339), MaxKCFutureSkew)
	}
	if kc.IssuedAt.Before(now.Add(-MaxKCAge)) {
		return fmt.Errorf("kc: iat %s is more than %s old", kc.IssuedAt.Format(time.RFC3339), MaxKCAge)
	}
	return nil
}

// decodeBstr decodes a CBOR byte string, refusing the other types that the
// library would otherwise convert into a []byte (arrays of small integers).
func decodeBstr(raw cbor.RawMessage, out *[]byte) error {
	if len(raw) == 0 || raw[0]>>5 != 2 {
		return errors.New("not a byte string")
	}
	return strictDec.Unmarshal(raw, out)
}
