package acmeclient

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"time"

	"github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
)

// EAB is an external account binding (RFC 8555 §7.3.4), for a CA that
// requires one.
type EAB struct {
	// KeyID is the key identifier the CA gave.
	KeyID string
	// HMACKey is the MAC key the CA gave, base64url.
	HMACKey string
}

// accountJSON is lego's account file (lego/cmd Account), so lego and this
// client can share an account.
type accountJSON struct {
	Email        string                `json:"email"`
	Registration *registrationResource `json:"registration"`
}

// registrationResource is lego's registration.Resource.
type registrationResource struct {
	Body acme.Account `json:"body"`
	URI  string       `json:"uri,omitempty"`
}

// storedAccount is what the storage holds for one server and email: a key
// (nil if none) and the account URL ("" if not registered).
type storedAccount struct {
	key        crypto.Signer
	url        string
	file, keyf string
}

// loadAccount reads the account for server and email, if any.
func (s *Storage) loadAccount(server *url.URL, email string) (*storedAccount, error) {
	a := &storedAccount{}
	a.file, a.keyf = s.accountPaths(server, email)
	kb, err := readFileLimited(a.keyf, maxKeyPEM)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return a, nil
	case err != nil:
		return nil, err
	}
	if a.key, err = ParseKeyPEM(kb); err != nil {
		return nil, fmt.Errorf("%s: %w", a.keyf, err)
	}
	if _, err := jwsAlgorithm(a.key); err != nil {
		return nil, fmt.Errorf("%s: %w", a.keyf, err)
	}
	ab, err := readFileLimited(a.file, maxAccountFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return a, nil
	case err != nil:
		return nil, err
	}
	var aj accountJSON
	if err := decodeJSON(a.file, ab, &aj); err != nil {
		return nil, err
	}
	if aj.Registration != nil && aj.Registration.URI != "" {
		if _, err := httpsURL(aj.Registration.URI); err != nil {
			return nil, fmt.Errorf("%s: account URL: %w", a.file, err)
		}
		a.url = aj.Registration.URI
	}
	return a, nil
}

// saveAccount writes the account key (SEC 1 for ECDSA, as lego does) and
// lego's account file, each atomically, the key first.
func (s *Storage) saveAccount(a *storedAccount, email string, acct acme.Account, newKey bool) error {
	if newKey {
		var blk *pem.Block
		switch k := a.key.(type) {
		case *ecdsa.PrivateKey:
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				return err
			}
			blk = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
		default:
			der, err := x509.MarshalPKCS8PrivateKey(k)
			if err != nil {
				return err
			}
			blk = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
		}
		if err := s.writeFileAtomic(a.keyf, pem.EncodeToMemory(blk), 0o600); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(accountJSON{Email: email, Registration: &registrationResource{Body: acct, URI: a.url}}, "", "\t")
	if err != nil {
		return err
	}
	return s.writeFileAtomic(a.file, b, 0o600)
}

// account loads the stored account for the configured server and email, or
// registers one (the key is made here, and written with the account file only
// once the CA has accepted it). It sets f.core and f.post up with the account
// key and URL.
func (f *flow) account() error {
	start := time.Now()
	c := f.c
	stored, err := c.store.loadAccount(c.dirURL, c.cfg.Email)
	if err != nil {
		return &StorageError{Op: "reading the ACME account", Err: err}
	}
	newKey := stored.key == nil
	if newKey {
		if stored.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return fmt.Errorf("account key: %w", err)
		}
	}
	core, err := api.New(f.hc, c.userAgent(), c.cfg.DirectoryURL, stored.url, stored.key)
	if err != nil {
		return wrap("directory", err)
	}
	dir := core.GetDirectory()
	for _, u := range []string{dir.NewNonceURL, dir.NewAccountURL, dir.NewOrderURL} {
		if _, err := httpsURL(u); err != nil {
			return fmt.Errorf("directory %s: %w", c.cfg.DirectoryURL, err)
		}
	}
	how := "reused"
	if stored.url == "" {
		if tos := dir.Meta.TermsOfService; tos != "" && !c.cfg.AcceptTOS {
			return fmt.Errorf("the CA has terms of service (%s); agree to them to register an account", tos)
		}
		req := acme.Account{TermsOfServiceAgreed: c.cfg.AcceptTOS}
		if c.cfg.Email != "" {
			req.Contact = []string{"mailto:" + c.cfg.Email}
		}
		var acct acme.ExtendedAccount
		if c.cfg.EAB != nil {
			acct, err = core.Accounts.NewEAB(req, c.cfg.EAB.KeyID, c.cfg.EAB.HMACKey)
		} else {
			acct, err = core.Accounts.New(req)
		}
		if err != nil {
			return wrap("newAccount", err)
		}
		if _, err := httpsURL(acct.Location); err != nil {
			return fmt.Errorf("newAccount: account URL: %w", err)
		}
		if acct.Status != "" && acct.Status != acme.StatusValid {
			return fmt.Errorf("newAccount: account %s is %q", acct.Location, acct.Status)
		}
		stored.url = acct.Location
		if err := c.store.saveAccount(stored, c.cfg.Email, acct.Account, newKey); err != nil {
			return &StorageError{Op: "saving the ACME account", Err: err}
		}
		how = "registered"
	}
	f.core = core
	f.accountURL = stored.url
	f.post = &poster{hc: f.hc, ua: c.userAgent(), key: stored.key, kid: stored.url, nonceURL: dir.NewNonceURL}
	if f.thumbprint, err = thumbprint(stored.key.Public()); err != nil {
		return err
	}
	c.emit(Event{Stage: StageAccount, Duration: time.Since(start),
		Message: fmt.Sprintf("account %s %s", how, stored.url),
		Fields:  map[string]string{"account": stored.url, "how": how}})
	return nil
}

// httpsURL parses an absolute https URL from the CA.
func httpsURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute https URL", s)
	}
	return u, nil
}
