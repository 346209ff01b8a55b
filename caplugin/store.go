package caplugin

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/smallstep/nosql"
)

// Tables of the plugin in step-ca's database (bbolt, badger, PostgreSQL or
// MySQL through smallstep/nosql). Nothing is kept in memory between the
// challenge and finalize, so a restarted CA, or another replica on the same
// database, finalizes what this one validated.
const (
	// earTable holds one earRecord per attested key and identifier.
	earTable = "attest_acme_ears"
	// orderTable maps an authorization ID to the ID of the order that created
	// it, for log lines and the order's DNS identifiers at the challenge.
	orderTable = "attest_acme_authz_orders"
)

// errNoRecord reports that no attestation result is stored for a key and
// identifier.
var errNoRecord = errors.New("no attestation result stored")

// earRecord is what a valid cmw challenge leaves for finalize.
type earRecord struct {
	// Fingerprint is step-ca's keyutil.Fingerprint of the attested key.
	Fingerprint string `json:"fingerprint"`
	// Identifier is the permanent-identifier the key was attested for.
	Identifier string `json:"identifier"`
	// Workload is the workload the EAR names.
	Workload string `json:"workload"`
	// Platform is the EAR submod that carried the result.
	Platform string `json:"platform"`
	// EAR is the signed attestation result (a JWT).
	EAR string `json:"ear"`
	// AccountID, OrderID, AuthorizationID and ChallengeID say where it came from.
	AccountID       string `json:"accountID"`
	OrderID         string `json:"orderID,omitempty"`
	AuthorizationID string `json:"authorizationID"`
	ChallengeID     string `json:"challengeID"`
	// ValidatedAt is when the challenge became valid.
	ValidatedAt time.Time `json:"validatedAt"`
	// ExpiresAt is when the authorization expires; the record is not used after.
	ExpiresAt time.Time `json:"expiresAt"`
}

// store reads and writes the plugin's tables.
type store struct {
	db nosql.DB
}

// newStore creates the plugin's tables if they do not exist.
func newStore(db nosql.DB) (*store, error) {
	if db == nil {
		return nil, errors.New("attestation store: no database (ca.json needs a \"db\" section for ACME)")
	}
	for _, t := range []string{earTable, orderTable} {
		if err := db.CreateTable([]byte(t)); err != nil {
			return nil, fmt.Errorf("attestation store: creating table %s: %w", t, err)
		}
	}
	return &store{db: db}, nil
}

// earKey is the key of a record: the key fingerprint and a hash of the
// identifier, short enough for the SQL backends' 255-byte keys.
func earKey(fingerprint, identifier string) []byte {
	h := sha256.Sum256([]byte(identifier))
	return []byte(fingerprint + "." + base64.RawURLEncoding.EncodeToString(h[:]))
}

// putEAR stores r, replacing an earlier record for the same key and identifier.
func (s *store) putEAR(r *earRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("attestation store: encoding record: %w", err)
	}
	if err := s.db.Set([]byte(earTable), earKey(r.Fingerprint, r.Identifier), b); err != nil {
		return fmt.Errorf("attestation store: writing record for %q: %w", r.Identifier, err)
	}
	return nil
}

// getEAR returns the record for a key fingerprint and identifier, or an
// error wrapping errNoRecord.
func (s *store) getEAR(fingerprint, identifier string) (*earRecord, error) {
	b, err := s.db.Get([]byte(earTable), earKey(fingerprint, identifier))
	if nosql.IsErrNotFound(err) {
		return nil, fmt.Errorf("%w for key %s and permanent-identifier %q", errNoRecord, fingerprint, identifier)
	}
	if err != nil {
		return nil, fmt.Errorf("attestation store: reading record for %q: %w", identifier, err)
	}
	r := new(earRecord)
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("attestation store: record for %q: %w", identifier, err)
	}
	if r.Fingerprint != fingerprint || r.Identifier != identifier {
		return nil, fmt.Errorf("attestation store: record under the key of %q is for %q", identifier, r.Identifier)
	}
	return r, nil
}

// putOrder records that authorization authzID belongs to order orderID.
func (s *store) putOrder(authzID, orderID string) error {
	if err := s.db.Set([]byte(orderTable), []byte(authzID), []byte(orderID)); err != nil {
		return fmt.Errorf("attestation store: indexing authorization %s: %w", authzID, err)
	}
	return nil
}

// orderOf returns the order of an authorization, "" if it is not indexed
// (an order created before the plugin ran).
func (s *store) orderOf(authzID string) (string, error) {
	b, err := s.db.Get([]byte(orderTable), []byte(authzID))
	if nosql.IsErrNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("attestation store: order of authorization %s: %w", authzID, err)
	}
	return string(b), nil
}
