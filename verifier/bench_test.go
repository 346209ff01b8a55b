package verifier

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/sim"
	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	sevabi "github.com/google/go-sev-guest/abi"
	sevverify "github.com/google/go-sev-guest/verify"
	tdxabi "github.com/google/go-tdx-guest/abi"
	tdxpb "github.com/google/go-tdx-guest/proto/tdx"
)

// BenchmarkVerifier measures appraisals per second for each platform three
// ways in one run (tests/bench reports the ratios in docs/performance.md):
//
//   - crypto: only the public-key operations one appraisal needs — the
//     evidence's signature checks on its real certificates and keys, and
//     the ES256 signature of the EAR. This is the bound.
//   - inprocess: the Appraiser (bundle decode, kc checks, platform
//     appraisal, policy, EAR signing).
//   - http: our Client against our Service on loopback (one session, one
//     evidence POST and one DELETE per appraisal).
//
// All run in parallel on GOMAXPROCS goroutines.
func BenchmarkVerifier(b *testing.B) {
	const ka = "token.thumbprint"
	f := newBenchFixture(b)
	type platform struct {
		name   string
		att    evidence.Attester
		crypto func(*testing.B, *evidence.Evidence) func()
		// cryptoOnly: only the bound is measured (a chip's first report,
		// whose chain the verifier has not cached yet).
		cryptoOnly bool
	}
	platforms := []platform{
		{name: "snp", att: mustSNP(b), crypto: snpCrypto},
		{name: "snp-first-report", att: mustSNP(b), crypto: snpChainCrypto, cryptoOnly: true},
		{name: "tdx", att: mustTDX(b), crypto: tdxCrypto},
	}
	if tp, err := tpm.OpenSimulator(); err == nil {
		b.Cleanup(func() { tp.Close() })
		att, err := tpm.NewAttester(tp, tpm.Config{PCRs: tpm.PCRSelection{tpm.BankSHA256: {0}}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { att.Close() })
		platforms = append(platforms, platform{name: "tpm", att: att, crypto: tpmCrypto})
		f.pinAK(b, att.AKPublic())
	}
	srv := newTestService(b, f.fixture, nil)
	client, err := NewClient(ClientConfig{URL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	earKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	for _, p := range platforms {
		ans, _ := answer(b, p.att, ka, f.now)
		bundle := evidence.Evidence{MediaType: evidence.MediaTypeBundle, Data: ans.Bundle}
		nonce := nonceOf(ka)
		// Every appraisal below must be affirming, or the numbers mean nothing.
		if r := f.appraise(b, ans.Bundle, nonce); r.Status != 2 {
			b.Fatalf("%s: benchmark evidence is not affirming: %s", p.name, r.Reason)
		}
		evCrypto := p.crypto(b, &ans.Evidence)
		b.Run(p.name+"/crypto", func(b *testing.B) {
			digest := sha256.Sum256([]byte("EAR signing input"))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					evCrypto()
					if _, err := ecdsa.SignASN1(rand.Reader, earKey, digest[:]); err != nil {
						b.Error(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appraisals/s")
		})
		if p.cryptoOnly {
			continue
		}
		b.Run(p.name+"/inprocess", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := f.app.Appraise(context.Background(), bundle, nonce); err != nil {
						b.Error(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appraisals/s")
		})
		b.Run(p.name+"/http", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.Appraise(context.Background(), bundle, nonce); err != nil {
						b.Error(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appraisals/s")
		})
	}
}

// benchFixture is a fixture whose clock does not move and whose policy can
// pin an AK after the fact.
type benchFixture struct{ *fixture }

func newBenchFixture(b *testing.B) *benchFixture {
	return &benchFixture{newFixture(b, nil)}
}

// pinAK replaces the policy with one that also pins ak.
func (f *benchFixture) pinAK(b *testing.B, ak any) {
	*f.fixture = *newFixture(b, pemPublic(b, ak))
}

func mustSNP(b *testing.B) evidence.Attester { return goodSNP(b, nil) }

func mustTDX(b *testing.B) evidence.Attester {
	td, err := sim.NewTDX(sim.TDXOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return td
}

// snpCrypto: the report's ECDSA P-384 signature. The VCEK's and ASK's
// certificate signatures (RSA-PSS) are checked once per VCEK and then cached
// by the SEV-SNP verifier (evidence/tsm/snpcache.go); snpChainCrypto is the
// bound for a chip's first report.
func snpCrypto(b *testing.B, ev *evidence.Evidence) func() {
	report, vcek, _, _ := snpChain(b, ev)
	return func() {
		if err := sevverify.SnpReportSignature(report, vcek); err != nil {
			b.Error(err)
		}
	}
}

// snpChainCrypto: the report's signature and its chain's two certificate
// signatures, as on a chip's first report.
func snpChainCrypto(b *testing.B, ev *evidence.Evidence) func() {
	report, vcek, ask, ark := snpChain(b, ev)
	return func() {
		if err := vcek.CheckSignatureFrom(ask); err != nil {
			b.Error(err)
		}
		if err := ask.CheckSignatureFrom(ark); err != nil {
			b.Error(err)
		}
		if err := sevverify.SnpReportSignature(report, vcek); err != nil {
			b.Error(err)
		}
	}
}

// snpChain returns a report, its VCEK and the test ASK and ARK.
func snpChain(b *testing.B, ev *evidence.Evidence) (report []byte, vcek, ask, ark *x509.Certificate) {
	r, err := tsm.ParseReport(ev.Data)
	if err != nil {
		b.Fatal(err)
	}
	var table sevabi.CertTable
	if err := table.Unmarshal(r.AuxBlob); err != nil {
		b.Fatal(err)
	}
	vcek, err = x509.ParseCertificate(table.Proto().GetVcekCert())
	if err != nil {
		b.Fatal(err)
	}
	roots, err := sim.SNPTestRoots()
	if err != nil {
		b.Fatal(err)
	}
	return r.OutBlob, vcek, roots[0].ASK, roots[0].ARK
}

// tdxCrypto: the PCK leaf's and the intermediate's certificate signatures on
// the quote's real chain, and two ECDSA P-256 verifications of messages the
// size of the QE report (384 bytes) and the signed quote (632 bytes) — the
// QE report and quote signatures, timed on a key of the same curve.
func tdxCrypto(b *testing.B, ev *evidence.Evidence) func() {
	r, err := tsm.ParseReport(ev.Data)
	if err != nil {
		b.Fatal(err)
	}
	q, err := tdxabi.QuoteToProto(r.OutBlob)
	if err != nil {
		b.Fatal(err)
	}
	chainPEM := q.(*tdxpb.QuoteV4).GetSignedData().GetCertificationData().GetQeReportCertificationData().GetPckCertificateChainData().GetPckCertChain()
	var certs []*x509.Certificate
	for rest := chainPEM; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			b.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 3 {
		b.Fatalf("PCK chain of %d certificates", len(certs))
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	qe, quote := sha256.Sum256(make([]byte, 384)), sha256.Sum256(make([]byte, 632))
	sigQE, _ := ecdsa.SignASN1(rand.Reader, k, qe[:])
	sigQuote, _ := ecdsa.SignASN1(rand.Reader, k, quote[:])
	return func() {
		if err := certs[0].CheckSignatureFrom(certs[1]); err != nil {
			b.Error(err)
		}
		if err := certs[1].CheckSignatureFrom(certs[2]); err != nil {
			b.Error(err)
		}
		m1, m2 := sha256.Sum256(make([]byte, 384)), sha256.Sum256(make([]byte, 632))
		if !ecdsa.VerifyASN1(&k.PublicKey, m1[:], sigQE) || !ecdsa.VerifyASN1(&k.PublicKey, m2[:], sigQuote) {
			b.Error("verify")
		}
	}
}

// tpmCrypto: the quote's ECDSA P-256 signature by the AK, timed on a key of
// the same curve over a TPMS_ATTEST-sized message.
func tpmCrypto(b *testing.B, _ *evidence.Evidence) func() {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d := sha256.Sum256(make([]byte, 145))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, d[:])
	return func() {
		m := sha256.Sum256(make([]byte, 145))
		if !ecdsa.VerifyASN1(&k.PublicKey, m[:], sig) {
			b.Error("verify")
		}
	}
}
