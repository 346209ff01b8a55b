package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// verifierBench is BenchmarkVerifier's result: appraisals per second by
// platform and way (crypto: the bound; inprocess; http).
type verifierBench struct {
	Command string `json:"command"`
	// Rates[platform][way] is appraisals per second.
	Rates map[string]map[string]float64 `json:"rates"`
	// Allocs[platform][way] is allocations per appraisal, where reported.
	Allocs    map[string]map[string]float64 `json:"allocs"`
	Platforms []string                      `json:"platforms"`
	Output    string                        `json:"output"`
}

// runVerifierBench runs the verifier package's benchmark and reads its
// appraisals/s metrics.
func runVerifierBench(ctx context.Context, root, benchtime string) (*verifierBench, error) {
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkVerifier$", "-benchtime", benchtime, "-count", "1", "./verifier"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	vb, err := parseVerifierBench(string(out))
	if err != nil {
		return nil, err
	}
	vb.Command = "go " + strings.Join(args, " ")
	return vb, nil
}

// parseVerifierBench reads lines such as
//
//	BenchmarkVerifier/snp/inprocess-2  5000  250000 ns/op  4000 appraisals/s  12345 B/op  150 allocs/op
func parseVerifierBench(out string) (*verifierBench, error) {
	vb := &verifierBench{Rates: map[string]map[string]float64{}, Allocs: map[string]map[string]float64{}, Output: out}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkVerifier/") {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkVerifier/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // the GOMAXPROCS suffix
		}
		platform, way, ok := strings.Cut(name, "/")
		if !ok {
			continue
		}
		if _, seen := vb.Rates[platform]; !seen {
			vb.Platforms = append(vb.Platforms, platform)
			vb.Rates[platform] = map[string]float64{}
			vb.Allocs[platform] = map[string]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "appraisals/s":
				vb.Rates[platform][way] = v
			case "allocs/op":
				vb.Allocs[platform][way] = v
			}
		}
	}
	if len(vb.Platforms) == 0 {
		return nil, fmt.Errorf("no BenchmarkVerifier results in the output:\n%s", out)
	}
	for _, p := range vb.Platforms {
		ways := []string{"crypto", "inprocess", "http"}
		if len(vb.Rates[p]) == 1 && vb.Rates[p]["crypto"] != 0 {
			ways = ways[:1] // a bound measured alone (a chip's first SEV-SNP report)
		}
		for _, w := range ways {
			if vb.Rates[p][w] == 0 {
				return nil, fmt.Errorf("BenchmarkVerifier/%s/%s: no appraisals/s in the output:\n%s", p, w, out)
			}
		}
	}
	return vb, nil
}
