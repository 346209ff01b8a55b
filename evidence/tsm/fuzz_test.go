package tsm_test

import (
	"bytes"
	"testing"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tsm"
)

// FuzzParseReport checks that ParseReport never panics, never accepts more than
// the bundle limit, and that whatever it accepts re-encodes to a map it parses
// the same way. Seeds: real simulator output (below) and the committed corpus
// in testdata/fuzz/FuzzParseReport (report maps from the simulator and
// malformed ones: duplicate keys, deep nesting, wrong types).
//
// The simulator's report maps are 6 KiB; by default go test spends up to 60 s
// minimizing each new input derived from them, during which the exec count
// stands still. -fuzzminimizetime=50x keeps the fuzzer fuzzing.
func FuzzParseReport(f *testing.F) {
	s := newSNP(f, sim.SNPOptions{})
	f.Add(attest(f, s, testD(1)))
	f.Add(cborReport(f, tsm.ProviderTDX, []byte{4, 0, 2, 0, 0x81, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := tsm.ParseReport(b)
		if err != nil {
			return
		}
		if len(b) > evidence.MaxItemSize {
			t.Fatalf("accepted %d bytes, over the limit", len(b))
		}
		again, err := r.Marshal()
		if err != nil {
			t.Fatalf("accepted a report it cannot encode: %v", err)
		}
		r2, err := tsm.ParseReport(again)
		if err != nil {
			t.Fatalf("cannot parse its own encoding: %v", err)
		}
		if r2.Provider != r.Provider || !bytes.Equal(r2.OutBlob, r.OutBlob) || !bytes.Equal(r2.AuxBlob, r.AuxBlob) {
			t.Fatalf("re-encoding changed the report: %+v, want %+v", r2, r)
		}
	})
}

// FuzzSNPAppraise checks that SEV-SNP appraisal never panics on any outblob
// and auxblob (the certificate table parser has 32-bit offset arithmetic
// upstream), and that it accepts nothing whose REPORT_DATA is not D. Seeds:
// simulator reports signed by the VCEK and by the VLEK, and the committed
// corpus in testdata/fuzz/FuzzSNPAppraise.
func FuzzSNPAppraise(f *testing.F) {
	d := testD(2)
	for _, o := range []sim.SNPOptions{{}, {VLEK: true}} {
		r := parseReport(f, attest(f, newSNP(f, o), d))
		f.Add(r.OutBlob, r.AuxBlob)
	}
	v := snpVerifier(f, testRoots(f))
	f.Fuzz(func(t *testing.T, outblob, auxblob []byte) {
		c, err := v.Appraise(outblob, auxblob, d)
		if err != nil {
			return
		}
		if !bytes.Equal(c.ReportData, d) {
			t.Fatalf("accepted REPORT_DATA %x, want %x", c.ReportData, d)
		}
	})
}
