package inspect_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/attest-acme/attest-acme/inspect"
)

// FuzzInspect: no input panics, and whatever is recognised renders as text
// and as JSON without duplicate member names.
func FuzzInspect(f *testing.F) {
	for _, dir := range []string{"testdata", filepath.Join("..", "challenge", "testdata", "golden")} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && !e.IsDir() {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := inspect.Inspect(b, inspect.Options{})
		if err != nil {
			return
		}
		text(t, res)
		checkJSON(t, res)
	})
}
