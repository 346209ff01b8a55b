package testenv

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	_ "github.com/mattn/go-sqlite3" // registers the sqlite3 driver that the stores use
	"github.com/spf13/viper"
	"github.com/veraison/services/kvstore"
	"github.com/veraison/services/policy"
	"go.uber.org/zap"
)

// Store names the three sqlite stores of a Veraison deployment.
type Store string

// The stores that vts opens: trust anchors, endorsements (reference values)
// and policies.
const (
	StoreTrustAnchors Store = "ta-store"
	StoreEndorsements Store = "en-store"
	StorePolicies     Store = "po-store"
)

// AllStores lists every store in the order InitStores creates them.
func AllStores() []Store {
	return []Store{StoreTrustAnchors, StoreEndorsements, StorePolicies}
}

// StorePath is the sqlite file of store s under dir, as the generated
// configuration names it.
func StorePath(dir string, s Store) string {
	return filepath.Join(dir, string(s)+".sql")
}

// InitStores creates the sqlite stores under dir with Veraison's own Setup
// code (kvstore for trust anchors and endorsements, policy.Store for
// policies). It refuses to touch a store file that already exists, so a
// deployment's state is never mixed with an earlier one.
func InitStores(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("stores: creating %s: %w", dir, err)
	}
	for _, s := range AllStores() {
		if err := initStore(dir, s); err != nil {
			return err
		}
	}
	return nil
}

func initStore(dir string, s Store) error {
	path := StorePath(dir, s)
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("stores: %s already exists", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stores: checking %s: %w", path, err)
	}

	v := viper.New()
	v.Set("backend", "sql")
	v.Set("sql.driver", "sqlite3")
	v.Set("sql.datasource", path)
	logger := zap.NewNop().Sugar()

	if s == StorePolicies {
		ps, err := policy.NewStore(v, logger)
		if err != nil {
			return fmt.Errorf("stores: opening %s: %w", path, err)
		}
		defer ps.Close()
		if err := ps.Setup(); err != nil {
			return fmt.Errorf("stores: creating the table of %s: %w", path, err)
		}
		return nil
	}

	kv, err := kvstore.New(v, logger)
	if err != nil {
		return fmt.Errorf("stores: opening %s: %w", path, err)
	}
	defer kv.Close()
	if err := kv.Setup(); err != nil {
		return fmt.Errorf("stores: creating the table of %s: %w", path, err)
	}
	return nil
}
