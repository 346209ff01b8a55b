package rig

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// stepCertsTable is where step-ca records every certificate it signs,
// serial number -> DER (step-ca's db package).
const stepCertsTable = "x509_certs"

// StoredCertificates reads every certificate step-ca recorded in a bbolt
// database. The CA must be stopped: a running CA holds the file's lock.
func StoredCertificates(dbPath string) ([]*x509.Certificate, error) {
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("rig: opening %s: %w", dbPath, err)
	}
	defer db.Close()
	var out []*x509.Certificate
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(stepCertsTable))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			// v lives in bbolt's mmap until the transaction ends; the
			// certificate keeps slices of what it parses.
			c, err := x509.ParseCertificate(bytes.Clone(v))
			if err != nil {
				return fmt.Errorf("rig: %s %s: %w", stepCertsTable, k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// DBPath is the bbolt database file of a CA set up with BBolt.
func (c *CA) DBPath() string { return c.Dir + "/db/ca.db" }
