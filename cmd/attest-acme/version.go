package main

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
)

func runVersion(_ context.Context, e env) error {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	fmt.Fprintf(e.stdout, "attest-acme %s\n", v)
	return nil
}

func sortStrings(s []string) { slices.Sort(s) }
