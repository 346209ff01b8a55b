package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/attest-acme/attest-acme/evidence/sim/internal/tdxpki"
)

func main() {
	out := flag.String("out", "testdata", "directory to write the PEM files into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "tdxpki gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	p, err := tdxpki.Generate(tdxpki.DefaultNotBefore, tdxpki.DefaultNotAfter)
	if err != nil {
		return err
	}
	files, err := p.Files()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), files[n], 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", filepath.Join(dir, n))
	}
	return nil
}
