package acmeclient

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Storage is the directory the client keeps everything in (--dir). Accounts
// follow lego's layout, so lego and this client can share an account;
// certificates follow lego's file names, but each set is written as a whole:
//
//	DIR/accounts/<host_port>/<email or noemail@example.com>/account.json
//	DIR/accounts/<host_port>/<email or noemail@example.com>/keys/<same>.key
//	DIR/certificates/<name>                -> .versions/<name>/<version>
//	DIR/certificates/<name>.crt            -> <name>/<name>.crt        leaf, then intermediates
//	DIR/certificates/<name>.issuer.crt     -> <name>/<name>.issuer.crt intermediates
//	DIR/certificates/<name>.key            -> <name>/<name>.key        PKCS #8, mode 0600
//	DIR/certificates/<name>.ear            -> <name>/<name>.ear        the EAR (JWT) from id-pe-cmw
//	DIR/certificates/<name>.json           -> <name>/<name>.json       Resource
//	DIR/certificates/.versions/<name>/<version>/...                    the files themselves
//
// <name> is the permanent identifier, or, if it has characters other than
// letters, digits, '.', '-' and '_', a sanitised form with a hash suffix.
//
// A new set is written into a fresh version directory (each file written,
// fsynced and closed, then the directory fsynced), and published by
// renaming a new symlink over certificates/<name>, which is atomic: a reader
// going through certificates/<name> sees the old set or the new one, never
// a mix, and a failure before the rename leaves the old set untouched. The
// previous version is kept for readers that opened it just before the swap;
// older ones are removed. Saves of one identifier take turns (flock on
// .versions/<name>.lock), so a cron job and a daemon cannot interleave.
type Storage struct {
	dir string
	fs  fileSystem
}

// NewStorage returns the storage in dir. Nothing is created until something
// is saved.
func NewStorage(dir string) *Storage {
	return &Storage{dir: filepath.Clean(dir), fs: osFS{}}
}

// Dir is the storage's directory.
func (s *Storage) Dir() string { return s.dir }

// Paths are where a certificate set is found, through the symlinks, so they
// stay the same from one renewal to the next.
type Paths struct {
	// Dir is certificates/<name>, the symlink to the current version.
	Dir string `json:"dir"`
	// Cert holds the leaf certificate then the intermediates (PEM).
	Cert string `json:"cert"`
	// Issuer holds the intermediates (PEM).
	Issuer string `json:"issuer"`
	// Key holds the certificate's private key (PKCS #8 PEM, mode 0600).
	Key string `json:"key"`
	// EAR holds the attestation result the certificate carries.
	EAR string `json:"ear"`
	// Resource holds the Resource (JSON).
	Resource string `json:"resource"`
}

// File suffixes, lego's where lego has them.
const (
	extCert     = ".crt"
	extIssuer   = ".issuer.crt"
	extKey      = ".key"
	extEAR      = ".ear"
	extResource = ".json"
)

// Limits on the files read back.
const (
	maxChainFile    = 1 << 20
	maxResourceFile = 64 << 10
	maxEARFile      = 64 << 10
	maxAccountFile  = 64 << 10
	maxVersionsKept = 2
)

const (
	certificatesDir = "certificates"
	versionsDir     = ".versions"
)

// Paths returns the stable paths of identifier's certificate set.
func (s *Storage) Paths(identifier string) Paths {
	name := storageName(identifier)
	root := filepath.Join(s.dir, certificatesDir)
	return Paths{
		Dir:      filepath.Join(root, name),
		Cert:     filepath.Join(root, name+extCert),
		Issuer:   filepath.Join(root, name+extIssuer),
		Key:      filepath.Join(root, name+extKey),
		EAR:      filepath.Join(root, name+extEAR),
		Resource: filepath.Join(root, name+extResource),
	}
}

// storageName is the file name for identifier: the identifier itself when
// it is a safe file name, else a sanitised form with a hash of the original
// (so two identifiers never share a name).
func storageName(identifier string) string {
	var b strings.Builder
	changed := false
	for i, r := range identifier {
		ok := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.' && i > 0
		if ok {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
			changed = true
		}
	}
	name := b.String()
	if len(name) > 100 {
		name, changed = name[:100], true
	}
	if changed || name == "" {
		sum := sha256.Sum256([]byte(identifier))
		name += "-" + hex.EncodeToString(sum[:6])
	}
	return name
}

// Resource is the JSON file written beside each certificate: lego's
// certificate resource fields, and what was attested.
type Resource struct {
	// Domain is the permanent identifier, under lego's name for it.
	Domain string `json:"domain"`
	// CertURL and CertStableURL are the certificate's URL at the CA (lego's fields).
	CertURL       string `json:"certUrl"`
	CertStableURL string `json:"certStableUrl"`
	// Identifier is the permanent identifier.
	Identifier string `json:"identifier"`
	// DNSNames are the dns identifiers ordered with it.
	DNSNames []string `json:"dnsNames,omitempty"`
	// Server is the ACME directory URL.
	Server string `json:"server"`
	// AccountURL and OrderURL are the account and order.
	AccountURL string `json:"accountUrl"`
	OrderURL   string `json:"orderUrl"`
	// KeyType is the certificate key's type.
	KeyType KeyType `json:"keyType"`
	// Serial is the certificate's serial number in hex.
	Serial string `json:"serial"`
	// NotBefore and NotAfter are the certificate's validity.
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// Nonce is N = SHA-256(keyAuthorization) of the challenge answered, hex.
	Nonce string `json:"nonce"`
	// EvidenceMediaType and EvidenceSHA256 name the platform evidence sent.
	EvidenceMediaType string `json:"evidenceMediaType"`
	EvidenceSHA256    string `json:"evidenceSha256"`
	// ObtainedAt is when the certificate was downloaded.
	ObtainedAt time.Time `json:"obtainedAt"`
}

// Certificate is an issued certificate with everything that belongs to it.
type Certificate struct {
	Resource
	// Key is the certificate's private key.
	Key crypto.Signer
	// Chain is the leaf then the intermediates.
	Chain []*x509.Certificate
	// ChainPEM is Chain as PEM; IssuerPEM the intermediates only.
	ChainPEM, IssuerPEM []byte
	// EAR is the attestation result from the leaf's id-pe-cmw extension.
	EAR []byte
}

// Leaf is the end-entity certificate.
func (c *Certificate) Leaf() *x509.Certificate { return c.Chain[0] }

// Saved is a certificate set as stored.
type Saved struct {
	*Certificate
	// Paths are its stable paths.
	Paths Paths
	// Version is the version directory it was written to.
	Version string
}

// Save writes the certificate set as a new version and publishes it
// atomically (see Storage). On error, whatever was there before is
// unchanged.
func (s *Storage) Save(c *Certificate) (*Saved, error) {
	sv, err := s.save(c)
	if err != nil {
		return nil, &StorageError{Op: fmt.Sprintf("saving the certificate for %q", c.Identifier), Err: err}
	}
	return sv, nil
}

func (s *Storage) save(c *Certificate) (*Saved, error) {
	name := storageName(c.Identifier)
	paths := s.Paths(c.Identifier)
	root := filepath.Join(s.dir, certificatesDir)
	versions := filepath.Join(root, versionsDir, name)

	keyPEM, err := EncodeKeyPEM(c.Key)
	if err != nil {
		return nil, err
	}
	res, err := json.MarshalIndent(c.Resource, "", "\t")
	if err != nil {
		return nil, err
	}
	if err := s.fs.MkdirAll(versions, 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockFile(versions + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	vdir, err := s.fs.MkdirTemp(versions, "v")
	if err != nil {
		return nil, err
	}
	published := false
	defer func() {
		if !published {
			_ = s.fs.RemoveAll(vdir)
		}
	}()
	for _, f := range []struct {
		ext  string
		data []byte
		perm fs.FileMode
	}{
		{extCert, c.ChainPEM, 0o644},
		{extIssuer, c.IssuerPEM, 0o644},
		{extKey, keyPEM, 0o600},
		{extEAR, c.EAR, 0o644},
		{extResource, append(res, '\n'), 0o644},
	} {
		if err := s.fs.WriteFile(filepath.Join(vdir, name+f.ext), f.data, f.perm); err != nil {
			return nil, err
		}
	}
	if err := s.fs.SyncDir(vdir); err != nil {
		return nil, err
	}
	if err := s.fs.SyncDir(versions); err != nil {
		return nil, err
	}
	previous, _ := s.fs.Readlink(paths.Dir)
	rel := filepath.Join(versionsDir, name, filepath.Base(vdir))
	// The swap: everything before it is invisible to readers.
	if err := s.replaceSymlink(rel, paths.Dir); err != nil {
		return nil, err
	}
	published = true
	// The stable file names point into the swapped directory; they only
	// need to exist.
	for _, ext := range []string{extCert, extIssuer, extKey, extEAR, extResource} {
		link := filepath.Join(root, name+ext)
		if target, err := s.fs.Readlink(link); err == nil && target == filepath.Join(name, name+ext) {
			continue
		}
		if err := s.replaceSymlink(filepath.Join(name, name+ext), link); err != nil {
			return nil, err
		}
	}
	if err := s.fs.SyncDir(root); err != nil {
		return nil, err
	}
	s.prune(versions, filepath.Base(vdir), filepath.Base(previous))
	return &Saved{Certificate: c, Paths: paths, Version: vdir}, nil
}

// replaceSymlink makes link point to target, atomically: a new symlink under
// a temporary name, renamed over link.
func (s *Storage) replaceSymlink(target, link string) error {
	tmp := filepath.Join(filepath.Dir(link), fmt.Sprintf(".%s.tmp-%016x", filepath.Base(link), rand.Uint64()))
	if err := s.fs.Symlink(target, tmp); err != nil {
		return err
	}
	if err := s.fs.Rename(tmp, link); err != nil {
		_ = s.fs.RemoveAll(tmp)
		return err
	}
	return nil
}

// prune removes the versions other than the current and the previous one
// (and the leftovers of interrupted saves). Failures only leave garbage.
func (s *Storage) prune(versions string, keep ...string) {
	entries, err := s.fs.ReadDir(versions)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !slices.Contains(keep, e.Name()) {
			_ = s.fs.RemoveAll(filepath.Join(versions, e.Name()))
		}
	}
}

// Load reads identifier's current certificate set. It fails with an error
// wrapping ErrNoCertificate when there is none.
func (s *Storage) Load(identifier string) (*Saved, error) {
	sv, err := s.load(identifier)
	if err != nil {
		return nil, &StorageError{Op: fmt.Sprintf("reading the certificate for %q", identifier), Err: err}
	}
	return sv, nil
}

func (s *Storage) load(identifier string) (*Saved, error) {
	name := storageName(identifier)
	paths := s.Paths(identifier)
	target, err := s.fs.Readlink(paths.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", paths.Dir, ErrNoCertificate)
	} else if err != nil {
		return nil, err
	}
	// Read every file from the one version the link named just now.
	vdir := filepath.Join(filepath.Dir(paths.Dir), target)
	read := func(ext string, limit int64) ([]byte, error) {
		return readFileLimited(filepath.Join(vdir, name+ext), limit)
	}
	c := &Certificate{}
	resJSON, err := read(extResource, maxResourceFile)
	if err != nil {
		return nil, err
	}
	if err := decodeJSON(name+extResource, resJSON, &c.Resource); err != nil {
		return nil, err
	}
	if c.Identifier != identifier {
		return nil, fmt.Errorf("%s holds the certificate of %q, not %q", vdir, c.Identifier, identifier)
	}
	if c.ChainPEM, err = read(extCert, maxChainFile); err != nil {
		return nil, err
	}
	if c.Chain, err = parseChain(c.ChainPEM); err != nil {
		return nil, fmt.Errorf("%s: %w", name+extCert, err)
	}
	if c.IssuerPEM, err = read(extIssuer, maxChainFile); err != nil {
		return nil, err
	}
	keyPEM, err := read(extKey, maxKeyPEM)
	if err != nil {
		return nil, err
	}
	if c.Key, err = ParseKeyPEM(keyPEM); err != nil {
		return nil, fmt.Errorf("%s: %w", name+extKey, err)
	}
	if !samePublicKey(c.Key.Public(), c.Leaf().PublicKey) {
		return nil, fmt.Errorf("%s: the key does not belong to the certificate", vdir)
	}
	if c.EAR, err = read(extEAR, maxEARFile); err != nil {
		return nil, err
	}
	return &Saved{Certificate: c, Paths: paths, Version: vdir}, nil
}

// parseChain reads PEM certificates, leaf first; anything but CERTIFICATE
// blocks is rejected.
func parseChain(b []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for rest := b; len(strings.TrimSpace(string(rest))) > 0; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, errors.New("certificate chain: data that is not PEM")
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("certificate chain: PEM block %q, want CERTIFICATE", blk.Type)
		}
		if len(chain) == maxChainLength {
			return nil, fmt.Errorf("certificate chain: more than %d certificates", maxChainLength)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate chain: certificate %d: %w", len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("certificate chain: no certificate")
	}
	return chain, nil
}

// maxChainLength bounds the certificates of a chain.
const maxChainLength = 8

// readFileLimited reads a file of at most limit bytes.
func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: over the limit of %d bytes", path, limit)
	}
	return b, nil
}

// accountUser is lego's user ID for an account: the email, or a placeholder.
func accountUser(email string) string {
	if email == "" {
		return "noemail@example.com"
	}
	return email
}

// accountPaths are lego's account file and account key for server and email.
func (s *Storage) accountPaths(server *url.URL, email string) (accountFile, keyFile string) {
	host := strings.NewReplacer(":", "_", "/", string(os.PathSeparator)).Replace(server.Host)
	user := accountUser(email)
	dir := filepath.Join(s.dir, "accounts", host, user)
	return filepath.Join(dir, "account.json"), filepath.Join(dir, "keys", user+".key")
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, written and fsynced, renamed over path, then the directory
// fsynced.
func (s *Storage) writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := s.fs.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.tmp-%016x", filepath.Base(path), rand.Uint64()))
	if err := s.fs.WriteFile(tmp, data, perm); err != nil {
		_ = s.fs.RemoveAll(tmp)
		return err
	}
	if err := s.fs.Rename(tmp, path); err != nil {
		_ = s.fs.RemoveAll(tmp)
		return err
	}
	return s.fs.SyncDir(dir)
}

// lockFile takes an exclusive flock(2) on path (created if need be), so
// that two processes saving the same identifier (a cron job and a daemon)
// take turns; the returned function releases it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// fileSystem is the file operations Storage uses; tests put a failing one in.
type fileSystem interface {
	MkdirAll(path string, perm fs.FileMode) error
	MkdirTemp(dir, pattern string) (string, error)
	// WriteFile creates path (it must not exist), writes data, fsyncs and
	// closes it.
	WriteFile(path string, data []byte, perm fs.FileMode) error
	Symlink(target, link string) error
	Readlink(path string) (string, error)
	Rename(from, to string) error
	RemoveAll(path string) error
	ReadDir(path string) ([]fs.DirEntry, error)
	SyncDir(path string) error
}

// osFS is fileSystem on the operating system's files.
type osFS struct{}

func (osFS) MkdirAll(path string, perm fs.FileMode) error  { return os.MkdirAll(path, perm) }
func (osFS) MkdirTemp(dir, pattern string) (string, error) { return os.MkdirTemp(dir, pattern) }
func (osFS) Symlink(target, link string) error             { return os.Symlink(target, link) }
func (osFS) Readlink(path string) (string, error)          { return os.Readlink(path) }
func (osFS) Rename(from, to string) error                  { return os.Rename(from, to) }
func (osFS) RemoveAll(path string) error                   { return os.RemoveAll(path) }
func (osFS) ReadDir(path string) ([]fs.DirEntry, error)    { return os.ReadDir(path) }

func (osFS) WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (osFS) SyncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
