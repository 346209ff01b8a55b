package psa

import (
	"crypto/ecdsa"
	"encoding/json"
	"fmt"

	cose "github.com/veraison/go-cose"
	"github.com/veraison/psatoken"
)

// Media types of PSA evidence and endorsements in Veraison services
// v0.0.2501 (scheme/psa-iot). Veraison compares them as exact strings
// after its own normalisation, so send them byte for byte.
const (
	// MediaTypeToken is the PSA profile 2 token (http://arm.com/psa/2.0.0).
	MediaTypeToken = `application/eat-cwt; profile="http://arm.com/psa/2.0.0"`
	// MediaTypeCoRIM is the unsigned CoRIM of the PSA endorsement profile.
	MediaTypeCoRIM = `application/corim-unsigned+cbor; profile="http://arm.com/psa/iot/1"`
)

// SubmodName is the name of the EAR submod that Veraison's PSA scheme
// writes its appraisal to.
const SubmodName = "PSA_IOT"

// Nonce sizes psa-nonce may have (psatoken: a PSA hash type, 32, 48 or 64
// bytes). Veraison's session nonce must also be 8 to 64 bytes.
var nonceSizes = [...]int{32, 48, 64}

// CheckNonce reports whether n has a size a PSA token can carry.
func CheckNonce(n []byte) error {
	for _, s := range nonceSizes {
		if len(n) == s {
			return nil
		}
	}
	return fmt.Errorf("psa: nonce is %d bytes, want 32, 48 or 64", len(n))
}

// NewToken builds and signs (ES256, COSE_Sign1) a PSA token from a claims
// template in psatoken's JSON syntax (profile "http://arm.com/psa/2.0.0"),
// with psa-nonce = nonce. The template must not carry psa-nonce. When it has
// no psa-instance-id, the instance ID is derived from the key (InstanceID).
// The claims are validated against the profile before they are signed.
func NewToken(claimsJSON, nonce []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	if err := CheckNonce(nonce); err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(claimsJSON, &fields); err != nil {
		return nil, fmt.Errorf("psa: claims template: %w", err)
	}
	if _, ok := fields["psa-nonce"]; ok {
		return nil, fmt.Errorf("psa: claims template carries psa-nonce; the nonce is given separately")
	}
	claims, err := psatoken.DecodeClaimsFromJSON(claimsJSON)
	if err != nil {
		return nil, fmt.Errorf("psa: claims template: %w", err)
	}
	if p, err := claims.GetProfile(); err != nil || p != psatoken.Profile2Name {
		return nil, fmt.Errorf("psa: claims template profile is %q (%v), want %q", p, err, psatoken.Profile2Name)
	}
	if err := claims.SetNonce(nonce); err != nil {
		return nil, fmt.Errorf("psa: setting psa-nonce: %w", err)
	}
	if _, ok := fields["psa-instance-id"]; !ok {
		id, err := InstanceID(&key.PublicKey)
		if err != nil {
			return nil, err
		}
		if err := claims.SetInstID(id); err != nil {
			return nil, fmt.Errorf("psa: setting psa-instance-id: %w", err)
		}
	}
	signer, err := cose.NewSigner(cose.AlgorithmES256, key)
	if err != nil {
		return nil, fmt.Errorf("psa: COSE signer: %w", err)
	}
	var ev psatoken.Evidence
	if err := ev.SetClaims(claims); err != nil {
		return nil, fmt.Errorf("psa: claims: %w", err)
	}
	tok, err := ev.ValidateAndSign(signer)
	if err != nil {
		return nil, fmt.Errorf("psa: signing the token: %w", err)
	}
	return tok, nil
}
