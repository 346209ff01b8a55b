package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	d := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", d(7), 99, 7},
		{"median of four is the second", d(1, 2, 3, 4), 50, 2},
		{"p99 of 100 is the 99th", d(seq(100)...), 99, 99},
		{"p99 of 10 is the last", d(seq(10)...), 99, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pct(tc.sorted, tc.p); got != tc.want {
				t.Errorf("pct(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestParseVerifierBench(t *testing.T) {
	out := `goos: linux
BenchmarkVerifier/snp/crypto-2         	    3189	    747513 ns/op	      1338 appraisals/s
BenchmarkVerifier/snp/inprocess-2      	    5192	    465621 ns/op	      1087 appraisals/s	  107210 B/op	     687 allocs/op
BenchmarkVerifier/snp/http-2           	     200	   2200580 ns/op	       454.4 appraisals/s	  351043 B/op	    1519 allocs/op
PASS
`
	vb, err := parseVerifierBench(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(vb.Platforms) != 1 || vb.Platforms[0] != "snp" {
		t.Fatalf("platforms %v, want [snp]", vb.Platforms)
	}
	if got := vb.Rates["snp"]["http"]; got != 454.4 {
		t.Errorf("snp/http rate %v, want 454.4", got)
	}
	if got := vb.Allocs["snp"]["inprocess"]; got != 687 {
		t.Errorf("snp/inprocess allocs %v, want 687", got)
	}
}

func TestParseVerifierBenchRejects(t *testing.T) {
	for _, tc := range []struct{ name, out, want string }{
		{"no results", "PASS\n", "no BenchmarkVerifier results"},
		{"a way missing", "BenchmarkVerifier/tpm/crypto-2 10 5 ns/op 100 appraisals/s\nBenchmarkVerifier/tpm/inprocess-2 10 5 ns/op 50 appraisals/s\n", "tpm/http: no appraisals/s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseVerifierBench(tc.out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestUpdateDocReplacesOnlyBetweenTheMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	doc := "# Perf\n\nbefore\n" + beginMarker + "\nold tables\n" + endMarker + "\nafter\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateDoc(path, "new tables\n"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Perf\n\nbefore\n" + beginMarker + "\n\nnew tables\n" + endMarker + "\nafter\n"
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
}

func TestUpdateDocRefusesAFileWithoutMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	if err := os.WriteFile(path, []byte("# Perf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateDoc(path, "x"); err == nil || !strings.Contains(err.Error(), "no results section") {
		t.Fatalf("error %v, want one naming the missing results section", err)
	}
}

func TestFlagsQuickSetsShortDefaultsButKeepsExplicitOnes(t *testing.T) {
	c, err := parseFlags([]string{"-quick", "-n", "100"})
	if err != nil {
		t.Fatal(err)
	}
	if c.n1 != 8 || c.n != 100 || c.warmup != 1 || c.benchtime != "20x" {
		t.Fatalf("quick: n1 %d n %d warmup %d benchtime %s; want 8, 100 (explicit), 1, 20x", c.n1, c.n, c.warmup, c.benchtime)
	}
}

func TestFlagsReject(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown database", []string{"-dbs", "mysql"}, `"mysql" is not bbolt or badgerv2`},
		{"unknown mode", []string{"-modes", "dns-01"}, `"dns-01" is not`},
		{"zero clients", []string{"-clients", "0"}, `"0" is not a positive number`},
		{"one issuance", []string{"-n1", "1"}, "at least 2"},
		{"arguments", []string{"extra"}, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
