package tsm

import (
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/verify/trust"
)

// snpChainCacheSize bounds the verified endorsement-key certificates an
// SNPVerifier remembers (about one per chip and TCB version it has seen).
const snpChainCacheSize = 4096

// snpChainCache remembers endorsement-key certificates (VCEK or VLEK) whose
// chain to a trusted ARK has been verified, so that the next report signed by
// the same key costs one signature check instead of three: the VCEK's and the
// ASK's signatures (RSA-4096 for AMD's chains) are the same computation every
// time. What is cached is exactly "these certificate bytes, of this signing
// key kind and product line, chain to the trusted roots", valid for the
// overlap of the validity periods of the certificates involved; the clock is
// checked against that window on every use, and the report's own signature,
// its consistency with the certificate and REPORT_DATA are checked every time.
type snpChainCache struct {
	mu sync.Mutex
	m  map[snpChainKey]snpChainEntry
}

type snpChainKey struct {
	cert   [32]byte // SHA-256 of the certificate's DER
	signer abi.ReportSigner
	line   string
}

type snpChainEntry struct {
	cert                *x509.Certificate
	notBefore, notAfter time.Time
}

func (c *snpChainCache) get(k snpChainKey, now time.Time) *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || now.Before(e.notBefore) || now.After(e.notAfter) {
		return nil
	}
	return e.cert
}

// put records a verified chain: cert under roots (every root certificate of
// the product line that could have vouched for it counts, so the window is
// the most conservative one).
func (c *snpChainCache) put(k snpChainKey, cert *x509.Certificate, roots []*trust.AMDRootCerts) {
	e := snpChainEntry{cert: cert, notBefore: cert.NotBefore, notAfter: cert.NotAfter}
	for _, r := range roots {
		pc := r.ProductCerts
		if pc == nil {
			continue
		}
		for _, rc := range []*x509.Certificate{pc.Ark, pc.Ask, pc.Asvk} {
			if rc == nil {
				continue
			}
			if rc.NotBefore.After(e.notBefore) {
				e.notBefore = rc.NotBefore
			}
			if rc.NotAfter.Before(e.notAfter) {
				e.notAfter = rc.NotAfter
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= snpChainCacheSize {
		c.m = make(map[snpChainKey]snpChainEntry) // simple: start over when full
	}
	c.m[k] = e
}

func snpKey(der []byte, signer abi.ReportSigner, line string) snpChainKey {
	return snpChainKey{cert: sha256.Sum256(der), signer: signer, line: line}
}
