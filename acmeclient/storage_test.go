package acmeclient

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCertificate makes a self-signed certificate set (the storage does not
// care who signed it).
func testCertificate(t *testing.T, id string, serial int64, ear string) *Certificate {
	t.Helper()
	key, err := GenerateKey(EC256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: id},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Certificate{
		Resource: Resource{Domain: id, Identifier: id, KeyType: EC256, Serial: fmt.Sprintf("%x", serial),
			NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, Nonce: fmt.Sprintf("%064x", serial)},
		Key:       key,
		Chain:     []*x509.Certificate{leaf},
		ChainPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		IssuerPEM: []byte{},
		EAR:       []byte(ear),
	}
}

// failingFS fails the first operation whose name and path match.
type failingFS struct {
	osFS
	op, suffix string
}

var errInjected = errors.New("injected failure")

func (f failingFS) fail(op, path string) error {
	if op == f.op && strings.Contains(path, f.suffix) {
		return &fs.PathError{Op: op, Path: path, Err: errInjected}
	}
	return nil
}

func (f failingFS) WriteFile(path string, data []byte, perm fs.FileMode) error {
	if err := f.fail("write", path); err != nil {
		// Leave a partial file behind, as a crash in the middle would.
		_ = f.osFS.WriteFile(path, data[:len(data)/2], perm)
		return err
	}
	return f.osFS.WriteFile(path, data, perm)
}

func (f failingFS) SyncDir(path string) error {
	if err := f.fail("sync", path); err != nil {
		return err
	}
	return f.osFS.SyncDir(path)
}

func (f failingFS) Rename(from, to string) error {
	if err := f.fail("rename", to); err != nil {
		return err
	}
	return f.osFS.Rename(from, to)
}

func (f failingFS) Symlink(target, link string) error {
	if err := f.fail("symlink", link); err != nil {
		return err
	}
	return f.osFS.Symlink(target, link)
}

func (f failingFS) MkdirTemp(dir, pattern string) (string, error) {
	if err := f.fail("mkdirtemp", dir); err != nil {
		return "", err
	}
	return f.osFS.MkdirTemp(dir, pattern)
}

// TestSaveFailureKeepsPreviousSet fails the second save at each step of the
// write and checks that the first set is still what Load returns and what
// the stable paths show, byte for byte, and that no debris is left.
func TestSaveFailureKeepsPreviousSet(t *testing.T) {
	for _, tc := range []struct{ op, suffix string }{
		{"mkdirtemp", "vm-1"},
		{"write", ".crt"},
		{"write", ".key"},
		{"write", ".ear"},
		{"write", ".json"},
		{"sync", ""}, // the version directory
		{"symlink", ".tmp-"},
		{"rename", filepath.Join("certificates", "vm-1")}, // the swap itself
	} {
		t.Run(tc.op+" "+tc.suffix, func(t *testing.T) {
			dir := t.TempDir()
			s := NewStorage(dir)
			first := testCertificate(t, "vm-1", 1, "ear-1")
			if _, err := s.Save(first); err != nil {
				t.Fatalf("first Save: %v", err)
			}
			before := tree(t, dir)

			s.fs = failingFS{op: tc.op, suffix: tc.suffix}
			_, err := s.Save(testCertificate(t, "vm-1", 2, "ear-2"))
			var se *StorageError
			if !errors.As(err, &se) || !errors.Is(err, errInjected) {
				t.Fatalf("second Save: %v, want a StorageError from the injected failure", err)
			}
			if !strings.Contains(err.Error(), `saving the certificate for "vm-1"`) {
				t.Errorf("error %q does not say what was being saved", err)
			}

			s.fs = osFS{}
			got, err := s.Load("vm-1")
			if err != nil {
				t.Fatalf("Load after the failure: %v", err)
			}
			if got.Serial != "1" || string(got.EAR) != "ear-1" || !bytes.Equal(got.Leaf().Raw, first.Leaf().Raw) ||
				!samePublicKey(got.Key.Public(), first.Key.Public()) {
				t.Errorf("Load returned serial %s EAR %q: not the first set", got.Serial, got.EAR)
			}
			if after := tree(t, dir); after != before {
				t.Errorf("the directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestSaveReplacesTheSetAtomically saves three versions: each Save
// publishes the whole new set, the stable paths follow it, the version
// before is kept for readers, older ones and debris of interrupted saves
// are removed.
func TestSaveReplacesTheSetAtomically(t *testing.T) {
	dir := t.TempDir()
	s := NewStorage(dir)
	var versions []string
	for i := int64(1); i <= 3; i++ {
		if i == 3 {
			// An interrupted save left a version directory that was never published.
			if err := os.MkdirAll(filepath.Join(dir, "certificates", ".versions", "vm-1", "v-interrupted"), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		c := testCertificate(t, "vm-1", i, fmt.Sprintf("ear-%d", i))
		sv, err := s.Save(c)
		if err != nil {
			t.Fatalf("Save %d: %v", i, err)
		}
		versions = append(versions, sv.Version)
		for path, want := range map[string][]byte{sv.Paths.Cert: c.ChainPEM, sv.Paths.EAR: c.EAR} {
			if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, want) {
				t.Errorf("save %d: %s holds %q (%v)", i, path, b, err)
			}
		}
		if st, err := os.Stat(sv.Paths.Key); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("save %d: key mode %v (%v), want 0600", i, st.Mode().Perm(), err)
		}
		got, err := s.Load("vm-1")
		if err != nil || got.Serial != fmt.Sprintf("%x", i) {
			t.Fatalf("Load after save %d: serial %v (%v)", i, got, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "certificates", ".versions", "vm-1"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{filepath.Base(versions[1]), filepath.Base(versions[2])}
	if len(names) != 2 || !(names[0] == want[0] && names[1] == want[1] || names[0] == want[1] && names[1] == want[0]) {
		t.Errorf("versions kept %v, want the current and the previous %v", names, want)
	}
}

// TestLoadRejects checks what Load refuses to return.
func TestLoadRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, vdir string)
		want   string
	}{
		{"nothing stored", nil, "no certificate stored"},
		{"key of another certificate", func(t *testing.T, vdir string) {
			other := testCertificate(t, "vm-1", 9, "x")
			k, err := EncodeKeyPEM(other.Key)
			if err != nil {
				t.Fatal(err)
			}
			must(t, os.WriteFile(filepath.Join(vdir, "vm-1.key"), k, 0o600))
		}, "the key does not belong to the certificate"},
		{"resource of another identifier", func(t *testing.T, vdir string) {
			must(t, os.WriteFile(filepath.Join(vdir, "vm-1.json"), []byte(`{"identifier":"vm-2"}`), 0o644))
		}, `holds the certificate of "vm-2", not "vm-1"`},
		{"certificate file that is not PEM", func(t *testing.T, vdir string) {
			must(t, os.WriteFile(filepath.Join(vdir, "vm-1.crt"), []byte("junk"), 0o644))
		}, "data that is not PEM"},
		{"oversized certificate file", func(t *testing.T, vdir string) {
			must(t, os.WriteFile(filepath.Join(vdir, "vm-1.crt"), make([]byte, maxChainFile+1), 0o644))
		}, "over the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStorage(t.TempDir())
			if tc.break_ != nil {
				sv, err := s.Save(testCertificate(t, "vm-1", 1, "ear"))
				if err != nil {
					t.Fatal(err)
				}
				tc.break_(t, sv.Version)
			}
			_, err := s.Load("vm-1")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestStorageNames checks the file names identifiers get.
func TestStorageNames(t *testing.T) {
	for id, want := range map[string]string{
		"vm-1":          "vm-1",
		"host.example":  "host.example",
		".hidden":       "_hidden-",
		"a b":           "a_b-",
		"a_b":           "a_b",
		"../escape":     "_._escape-",
		"ünïcode":       "_n_code-",
		"with:colon@at": "with_colon_at-",
	} {
		got := storageName(id)
		if strings.HasSuffix(want, "-") {
			if !strings.HasPrefix(got, want) || len(got) != len(want)+12 {
				t.Errorf("storageName(%q) = %q, want %q and a hash", id, got, want)
			}
		} else if got != want {
			t.Errorf("storageName(%q) = %q, want %q", id, got, want)
		}
		if strings.ContainsAny(got, "/\\") || strings.HasPrefix(got, ".") {
			t.Errorf("storageName(%q) = %q is not a plain file name", id, got)
		}
	}
	if storageName("a b") == storageName("a_b") {
		t.Error("two identifiers share a file name")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tree lists every file and symlink under dir with its content or target.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s -> %s\n", rel, target)
		case d.IsDir():
			fmt.Fprintf(&b, "%s/\n", rel)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s %x\n", rel, data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestConcurrentSavesStayConsistent saves the same identifier from several
// goroutines at once (as a cron job and a daemon might, in two processes):
// the saves take turns, and the result is one whole set.
func TestConcurrentSavesStayConsistent(t *testing.T) {
	dir := t.TempDir()
	certs := make([]*Certificate, 6)
	for i := range certs {
		certs[i] = testCertificate(t, "vm-1", int64(i+1), fmt.Sprintf("ear-%d", i+1))
	}
	errs := make(chan error, len(certs))
	for _, c := range certs {
		go func() {
			_, err := NewStorage(dir).Save(c)
			errs <- err
		}()
	}
	for range certs {
		if err := <-errs; err != nil {
			t.Fatalf("Save: %v", err)
		}
	}
	got, err := NewStorage(dir).Load("vm-1")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := "ear-" + got.Serial; string(got.EAR) != want {
		t.Errorf("EAR %q with serial %s: a mixed set", got.EAR, got.Serial)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "certificates", ".versions", "vm-1"))
	if err != nil || len(entries) > 2 {
		t.Errorf("%d versions left (%v), want at most 2", len(entries), err)
	}
}
