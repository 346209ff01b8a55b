package caplugin

import (
	"context"
	"encoding/base64"
	"encoding/json"

	"github.com/fxamacker/cbor/v2"
	"github.com/smallstep/certificates/acme"

	"github.com/attest-acme/attest-acme/challenge"
)

// acmeDB decorates step-ca's ACME database (DESIGN.md decision 1).
//
// step-ca's deviceAttest01Validate checks the JWS, nonce and account, decodes
// the payload and, for a format it does not know, calls storeError, which
// writes the challenge as invalid through UpdateChallenge. acmeDB catches
// exactly that write when the format is "cmw" and runs attest-acme's
// validation instead; every other call goes to the inner database unchanged,
// so an unknown format other than "cmw" keeps step-ca's own error.
//
// It also indexes each new order's authorizations (CreateOrder), so the
// challenge can name its order in logs and check the order's DNS names.
type acmeDB struct {
	acme.DB
	validator *validator
	store     *store
}

// The decorator must keep step-ca's Wire challenges working, which assert the
// database to acme.WireDB.
var _ acme.WireDB = (*acmeDB)(nil)

// UpdateChallenge runs the cmw validation when ch is step-ca's rejection of
// an answer in the "cmw" format, and passes every other write through.
func (d *acmeDB) UpdateChallenge(ctx context.Context, ch *acme.Challenge) error {
	if !isUpstreamCMWRejection(ch) {
		return d.DB.UpdateChallenge(ctx, ch)
	}
	return d.validator.validate(ctx, ch)
}

// CreateOrder creates the order and indexes its authorizations.
func (d *acmeDB) CreateOrder(ctx context.Context, o *acme.Order) error {
	if err := d.DB.CreateOrder(ctx, o); err != nil {
		return err
	}
	for _, azID := range o.AuthorizationIDs {
		if err := d.store.putOrder(azID, o.ID); err != nil {
			return acme.WrapErrorISE(err, "error indexing order %s", o.ID)
		}
	}
	return nil
}

// wire returns the inner database as a WireDB.
func (d *acmeDB) wire() (acme.WireDB, error) {
	w, ok := d.DB.(acme.WireDB)
	if !ok {
		return nil, acme.NewErrorISE("db %T is not a WireDB", d.DB)
	}
	return w, nil
}

// GetAllOrdersByAccountID passes through to the inner WireDB.
func (d *acmeDB) GetAllOrdersByAccountID(ctx context.Context, accountID string) ([]string, error) {
	w, err := d.wire()
	if err != nil {
		return nil, err
	}
	return w.GetAllOrdersByAccountID(ctx, accountID)
}

// CreateDpopToken passes through to the inner WireDB.
func (d *acmeDB) CreateDpopToken(ctx context.Context, orderID string, dpop map[string]any) error {
	w, err := d.wire()
	if err != nil {
		return err
	}
	return w.CreateDpopToken(ctx, orderID, dpop)
}

// GetDpopToken passes through to the inner WireDB.
func (d *acmeDB) GetDpopToken(ctx context.Context, orderID string) (map[string]any, error) {
	w, err := d.wire()
	if err != nil {
		return nil, err
	}
	return w.GetDpopToken(ctx, orderID)
}

// CreateOidcToken passes through to the inner WireDB.
func (d *acmeDB) CreateOidcToken(ctx context.Context, orderID string, idToken map[string]any) error {
	w, err := d.wire()
	if err != nil {
		return err
	}
	return w.CreateOidcToken(ctx, orderID, idToken)
}

// GetOidcToken passes through to the inner WireDB.
func (d *acmeDB) GetOidcToken(ctx context.Context, orderID string) (map[string]any, error) {
	w, err := d.wire()
	if err != nil {
		return nil, err
	}
	return w.GetOidcToken(ctx, orderID)
}

// badAttestationURN is the ACME problem type step-ca writes for an
// unsupported attestation format.
const badAttestationURN = string(challenge.BadAttestationStatement)

// isUpstreamCMWRejection reports whether ch is the write step-ca makes when
// it meets the "cmw" format: a device-attest-01 challenge marked invalid with
// badAttestationStatement, whose payload's attestation object has fmt "cmw".
func isUpstreamCMWRejection(ch *acme.Challenge) bool {
	if ch == nil || ch.Type != acme.DEVICEATTEST01 || ch.Status != acme.StatusInvalid ||
		ch.Error == nil || ch.Error.Type != badAttestationURN {
		return false
	}
	return payloadFormat(ch.Payload) == challenge.Format
}

// attObjFormat is the one field of an attestation object that says its format.
type attObjFormat struct {
	Fmt string `cbor:"fmt"`
}

// formatDec reads only the fmt of an attestation object that step-ca has
// already found well formed, with step-ca's own (default) limits, so that
// every object step-ca hands over as "cmw" reaches the strict decode of
// challenge.DecodePayload and its precise errors.
var formatDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{}.DecMode()
	if err != nil {
		panic("caplugin: CBOR options: " + err.Error())
	}
	return dm
}()

// payloadFormat returns the fmt of a device-attest-01 payload's attestation
// object, decoded the way step-ca decodes it, or "" if there is none.
func payloadFormat(payload []byte) string {
	var p struct {
		AttObj string `json:"attObj"`
	}
	if len(payload) == 0 || json.Unmarshal(payload, &p) != nil {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(p.AttObj)
	if err != nil {
		return ""
	}
	var f attObjFormat
	if formatDec.Unmarshal(raw, &f) != nil {
		return ""
	}
	return f.Fmt
}
