package tpm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// extendAfterQuote is a transport that, after the first `times` TPM2_Quote
// commands, extends PCR 7 before the Attester can read it: what a measured
// event racing the quote looks like.
type extendAfterQuote struct {
	transport.TPM
	t      testing.TB
	times  int
	quotes int
}

func (e *extendAfterQuote) Send(cmd []byte) ([]byte, error) {
	rsp, err := e.TPM.Send(cmd)
	// A command starts with tag (2 bytes), size (4) and command code (4).
	if err == nil && len(cmd) >= 10 && binary.BigEndian.Uint32(cmd[6:10]) == uint32(tpm2.TPMCCQuote) {
		e.quotes++
		if e.quotes <= e.times {
			event := sha256.Sum256([]byte{byte(e.quotes)})
			if _, err := (tpm2.PCRExtend{
				PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(7), Auth: tpm2.PasswordAuth(nil)},
				Digests:   tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{HashAlg: tpm2.TPMAlgSHA256, Digest: event[:]}}},
			}).Execute(e.TPM); err != nil {
				e.t.Errorf("TPM2_PCR_Extend: %v", err)
			}
		}
	}
	return rsp, err
}

func TestAttestQuotesAgainWhenAPCRChanges(t *testing.T) {
	sim := openSimulator(t)

	t.Run("once", func(t *testing.T) {
		racy := &extendAfterQuote{TPM: sim, t: t, times: 1}
		a := newAttester(t, racy, Config{})
		_, d := newBinding(t)
		if _, err := pinned(t, a.AKPublic()).Appraise(attest(t, a, d), d); err != nil {
			t.Fatalf("Appraise: %v", err)
		}
		if racy.quotes != 2 {
			t.Fatalf("%d quotes, want 2: one raced by an extend, one clean", racy.quotes)
		}
	})
	t.Run("every time", func(t *testing.T) {
		racy := &extendAfterQuote{TPM: sim, t: t, times: 1000}
		a := newAttester(t, racy, Config{})
		_, d := newBinding(t)
		_, err := a.Attest(context.Background(), d)
		wantErr(t, err, "PCRs kept changing during 3 quotes")
	})
}

func TestAttesterIsSafeForGoroutines(t *testing.T) {
	f := newFixture(t, Config{})
	v := pinned(t, f.a.AKPublic())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ev, err := f.a.Attest(context.Background(), f.d)
			if err != nil {
				t.Errorf("Attest: %v", err)
				return
			}
			if _, err := v.Appraise(ev.Data, f.d); err != nil {
				t.Errorf("Appraise: %v", err)
			}
		})
	}
	wg.Wait()
}
