package tsm_test

import (
	"testing"

	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tsm"
)

// BenchmarkSNPAppraise measures the appraisal of one simulated SEV-SNP report
// map: parsing, the VCEK chain, the report signature and the consistency
// checks.
func BenchmarkSNPAppraise(b *testing.B) {
	d := testD(3)
	ev := attest(b, newSNP(b, sim.SNPOptions{}), d)
	v := tsm.NewVerifier(tsm.Options{SNP: snpVerifier(b, testRoots(b))})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Appraise(ev, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseReport measures the strict decoding of a report map.
func BenchmarkParseReport(b *testing.B) {
	ev := attest(b, newSNP(b, sim.SNPOptions{}), testD(4))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tsm.ParseReport(ev); err != nil {
			b.Fatal(err)
		}
	}
}
