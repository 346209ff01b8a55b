package sim_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/sim/internal/tdxpki"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/google/go-configfs-tsm/report"
)

var tdxTestTime = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func tdxVerifier(t testing.TB, roots []*x509.Certificate) *tsm.TDXVerifier {
	t.Helper()
	v, err := tsm.NewTDXVerifier(tsm.TDXOptions{Roots: roots, Now: func() time.Time { return tdxTestTime }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newTDX(t testing.TB, o sim.TDXOptions) *sim.TDX {
	t.Helper()
	td, err := sim.NewTDX(o)
	if err != nil {
		t.Fatal(err)
	}
	return td
}

func tdxD(label string) []byte {
	h := sha512.Sum512([]byte(label))
	return h[:]
}

// The committed test root is what every process trusts: the file a policy
// is written from, the root of the committed chain and what TDXTestRoot
// returns are the same certificate.
func TestTDXTestRootIsTheCommittedOne(t *testing.T) {
	file, err := os.ReadFile("testdata/" + tdxpki.FileRoot)
	if err != nil {
		t.Fatal(err)
	}
	pemRoot, err := sim.TDXTestRootPEM()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pemRoot, file) {
		t.Fatalf("TDXTestRootPEM differs from testdata/%s", tdxpki.FileRoot)
	}
	root, err := sim.TDXTestRoot()
	if err != nil {
		t.Fatal(err)
	}
	if got := root.Subject.Organization; len(got) != 1 || !strings.Contains(got[0], "NOT Intel") {
		t.Fatalf("test root organisation %q does not mark it as a test root", got)
	}
	if td := newTDX(t, sim.TDXOptions{}); len(td.Roots()) != 1 || !td.Roots()[0].Equal(root) {
		t.Fatal("a TD without a PKI does not chain to the committed test root")
	}
	pki, err := sim.TDXTestPKI()
	if err != nil {
		t.Fatal(err)
	}
	if !pki.Root().Equal(root) || !bytes.Equal(pki.RootPEM(), file) {
		t.Fatal("TDXTestPKI's root is not the committed root")
	}
}

func TestTDXAttestAppraises(t *testing.T) {
	fresh, err := sim.NewTDXPKI()
	if err != nil {
		t.Fatal(err)
	}
	mrtd := bytes.Repeat([]byte{0xa5}, 48)
	rtmr2 := bytes.Repeat([]byte{0x5a}, 48)
	for name, o := range map[string]sim.TDXOptions{
		"defaults":            {},
		"own MRTD and RTMR2":  {MRTD: mrtd, RTMR: [4][]byte{2: rtmr2}, TDAttributes: sim.TDXAttrSEPTVEDisable},
		"debug":               {Debug: true},
		"a fresh signing PKI": {PKI: fresh},
	} {
		t.Run(name, func(t *testing.T) {
			td := newTDX(t, o)
			d := tdxD(name)
			ev, err := td.Attest(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			c, err := tsm.NewVerifier(tsm.Options{TDX: tdxVerifier(t, td.Roots())}).Appraise(ev.Data, d)
			if err != nil {
				t.Fatal(err)
			}
			wantMRTD := o.MRTD
			if wantMRTD == nil {
				wantMRTD = sim.DefaultTDXMRTD()
			}
			if !bytes.Equal(c.TDX.MRTD, wantMRTD) {
				t.Errorf("MRTD %x, want %x", c.TDX.MRTD, wantMRTD)
			}
			for i, r := range c.TDX.RTMR {
				want := o.RTMR[i]
				if want == nil {
					want = make([]byte, 48)
				}
				if !bytes.Equal(r, want) {
					t.Errorf("RTMR%d %x, want %x", i, r, want)
				}
			}
			if c.TDX.Debug != o.Debug {
				t.Errorf("Debug %v, want %v", c.TDX.Debug, o.Debug)
			}
			if !bytes.Equal(c.TDX.FMSPC, tdxpki.TestFMSPC) {
				t.Errorf("FMSPC %x, want %x", c.TDX.FMSPC, tdxpki.TestFMSPC)
			}
		})
	}
}

// The fake tdx_guest provider refuses what the kernel's refuses, so the
// tsm.Attester is tested against the real rules.
func TestTDXProviderBehavesLikeTheKernel(t *testing.T) {
	td := newTDX(t, sim.TDXOptions{})
	t.Run("inblob of 32 bytes", func(t *testing.T) {
		_, err := report.Get(td.Client(), &report.Request{InBlob: make([]byte, 32)})
		if err == nil || !strings.Contains(err.Error(), "tdx_guest takes a 64-byte inblob, got 32") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("inblob of 65 bytes", func(t *testing.T) {
		_, err := report.Get(td.Client(), &report.Request{InBlob: make([]byte, 65)})
		// go-configfs-tsm wraps with %v: compare the text of EINVAL.
		if err == nil || !strings.Contains(err.Error(), syscall.EINVAL.Error()) {
			t.Fatalf("got %v, want EINVAL", err)
		}
	})
	t.Run("privilege level", func(t *testing.T) {
		_, err := report.Get(td.Client(), &report.Request{InBlob: tdxD("x"), Privilege: &report.Privilege{Level: 1}})
		if err == nil || !strings.Contains(err.Error(), "tdx_guest has no privilege levels") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("attester rejects a short D", func(t *testing.T) {
		if _, err := td.Attest(context.Background(), make([]byte, 63)); err == nil {
			t.Fatal("accepted a 63-byte D")
		}
	})
	t.Run("provider and auxblob", func(t *testing.T) {
		r, err := report.Get(td.Client(), &report.Request{InBlob: tdxD("x"), GetAuxBlob: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Provider != "tdx_guest\n" || len(r.AuxBlob) != 0 {
			t.Fatalf("provider %q, auxblob %d bytes; want %q and none", r.Provider, len(r.AuxBlob), "tdx_guest\n")
		}
	})
}

func TestNewTDXRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		o    sim.TDXOptions
		want string
	}{
		"MRTD of 32 bytes":  {sim.TDXOptions{MRTD: make([]byte, 32)}, "MRTD is 32 bytes, want 48"},
		"RTMR3 of 49 bytes": {sim.TDXOptions{RTMR: [4][]byte{3: make([]byte, 49)}}, "RTMR3 is 49 bytes, want 48"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := sim.NewTDX(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error that says %q", err, tc.want)
			}
		})
	}
	td := newTDX(t, sim.TDXOptions{})
	if _, err := td.Quote(make([]byte, 48)); err == nil || !strings.Contains(err.Error(), "REPORTDATA is 48 bytes, want 64") {
		t.Fatalf("Quote with 48 bytes: %v", err)
	}
}

// One TD serves concurrent requests, each with its own REPORTDATA.
func TestTDXAttestConcurrently(t *testing.T) {
	td := newTDX(t, sim.TDXOptions{})
	v := tsm.NewVerifier(tsm.Options{TDX: tdxVerifier(t, td.Roots())})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := tdxD(fmt.Sprint(i))
			ev, err := td.Attest(context.Background(), d)
			if err == nil {
				_, err = v.Appraise(ev.Data, d)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func BenchmarkSimTDXAttest(b *testing.B) {
	td := newTDX(b, sim.TDXOptions{})
	d := tdxD("bench")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := td.Attest(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}
