package tpm

import (
	"context"
	"testing"
)

// BenchmarkAttest quotes sha256:0-7 on the in-process simulator: one
// TPM2_Quote and one TPM2_PCR_Read per operation, plus encoding.
func BenchmarkAttest(b *testing.B) {
	tpm := openSimulator(b)
	a := newAttester(b, tpm, Config{})
	_, d := newBinding(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Attest(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppraise appraises a simulator quote of sha256:0-7 with the AK
// pinned: decoding, AK checks, one ECDSA P-256 verification, PCR digest.
func BenchmarkAppraise(b *testing.B) {
	f := newFixture(b, Config{})
	v := pinned(b, f.a.AKPublic())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Appraise(f.data, f.d); err != nil {
			b.Fatal(err)
		}
	}
}
