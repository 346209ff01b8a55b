package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// Anchors are what a Verifier trusts an AK by. At least one pinned AK or one
// root is required.
type Anchors struct {
	// AKs are pinned AK public keys (*ecdsa.PublicKey, *rsa.PublicKey).
	AKs []crypto.PublicKey
	// Roots are CA certificates that an AK's "akchain" may lead to.
	Roots []*x509.Certificate
	// Now is the clock certificate chains are validated at; required with
	// Roots.
	Now func() time.Time
}

// Verifier appraises TPM quote maps against its Anchors. It holds no
// mutable state and may be shared by goroutines.
type Verifier struct {
	aks   []crypto.PublicKey
	roots *x509.CertPool
	now   func() time.Time
	// akCache holds parsed AKs: the same TPM sends the same TPMT_PUBLIC with
	// every quote, and go-tpm's reflection-based decoding of it costs more
	// than the quote's signature check.
	akCache akCache
}

// akCacheSize bounds the parsed AKs a Verifier keeps.
const akCacheSize = 4096

// akCache maps the SHA-256 of a TPMT_PUBLIC to its parse. Parsing is a pure
// function of the bytes, so a hit is exactly what parsing again would give;
// trust in the key is still decided on every appraisal.
type akCache struct {
	mu sync.Mutex
	m  map[[32]byte]akCacheEntry
}

type akCacheEntry struct {
	ak *akKey
	fp string
}

func (c *akCache) parse(b []byte) (*akKey, string, error) {
	sum := sha256.Sum256(b)
	c.mu.Lock()
	e, ok := c.m[sum]
	c.mu.Unlock()
	if ok {
		return e.ak, e.fp, nil
	}
	ak, err := parseAK(b)
	if err != nil {
		return nil, "", err
	}
	fp, err := AKFingerprint(ak.key)
	if err != nil {
		return nil, "", err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= akCacheSize {
		c.m = make(map[[32]byte]akCacheEntry) // simple: start over when full
	}
	c.m[sum] = akCacheEntry{ak, fp}
	c.mu.Unlock()
	return ak, fp, nil
}

// NewVerifier returns a Verifier for the anchors.
func NewVerifier(a Anchors) (*Verifier, error) {
	if len(a.AKs) == 0 && len(a.Roots) == 0 {
		return nil, errors.New("tpm: no AK anchors: pin an AK public key or name an AK CA root")
	}
	v := &Verifier{now: a.Now}
	for i, k := range a.AKs {
		switch k.(type) {
		case *ecdsa.PublicKey, *rsa.PublicKey:
		default:
			return nil, fmt.Errorf("tpm: pinned AK %d is a %T, want an ECDSA or RSA public key", i, k)
		}
		v.aks = append(v.aks, k)
	}
	if len(a.Roots) > 0 {
		if a.Now == nil {
			return nil, errors.New("tpm: AK CA roots need a clock (Anchors.Now) to validate chains")
		}
		v.roots = x509.NewCertPool()
		for i, r := range a.Roots {
			if r == nil {
				return nil, fmt.Errorf("tpm: AK CA root %d is nil", i)
			}
			v.roots.AddCert(r)
		}
	}
	return v, nil
}

// ClockInfo is the TPM's TPMS_CLOCK_INFO at the time of the quote.
type ClockInfo struct {
	// Clock is the time in milliseconds the TPM has been powered since
	// it was last cleared.
	Clock uint64
	// ResetCount counts TPM resets (reboots) since the last clear.
	ResetCount uint32
	// RestartCount counts restarts (resume from hibernation) since the
	// last reset.
	RestartCount uint32
	// Safe says no greater Clock value was ever reported.
	Safe bool
}

// Claims is what an appraised quote establishes: this AK, trusted through
// the anchors, quoted these PCR values over the expected qualifyingData.
type Claims struct {
	// AK is the attestation key's public key.
	AK crypto.PublicKey
	// AKFingerprint is the hex SHA-256 of the AK's SubjectPublicKeyInfo DER.
	AKFingerprint string
	// AKCertificate is the AK's certificate when the AK was trusted through
	// its "akchain"; nil when it was pinned.
	AKCertificate *x509.Certificate
	// PCRs holds every quoted PCR value, by bank and index.
	PCRs PCRValues
	// FirmwareVersion is the TPM vendor's firmware version number.
	FirmwareVersion uint64
	// Clock is the TPM clock at the time of the quote.
	Clock ClockInfo
}

// Appraise checks a quote map (docs/protocol.md §4) against d, the expected
// qualifyingData (D = SHA-256(kc) in this protocol):
//
//  1. ParseQuote's strict decoding and bounds;
//  2. "ak" is a restricted signing key that never leaves the TPM, trusted
//     because it equals a pinned AK, or because "akchain" leads to a root at
//     Anchors.Now and its leaf certifies this very key;
//  3. "sig" is the AK's signature over "quoted";
//  4. "quoted" is a TPMS_ATTEST with magic TPM_GENERATED_VALUE and type
//     TPM_ST_ATTEST_QUOTE, and its extraData equals d;
//  5. the quote's PCR selection and "pcrs" name exactly the same PCRs, and
//     the values, concatenated in selection order and hashed with the
//     signature's hash, give the quote's pcrDigest.
//
// It decides nothing about which PCR values are acceptable.
func (v *Verifier) Appraise(evidence []byte, d []byte) (*Claims, error) {
	if len(d) == 0 {
		return nil, errors.New("tpm: expected qualifyingData is empty; a quote must be bound to D")
	}
	q, err := ParseQuote(evidence)
	if err != nil {
		return nil, err
	}
	ak, fp, err := v.akCache.parse(q.AK)
	if err != nil {
		return nil, fmt.Errorf("tpm: ak: %w", err)
	}
	claims := &Claims{AK: ak.key, AKFingerprint: fp}
	if claims.AKCertificate, err = v.trustAK(ak.key, claims.AKFingerprint, q.AKChain); err != nil {
		return nil, err
	}

	sig, err := UnmarshalExact[tpm2.TPMTSignature](q.Sig)
	if err != nil {
		return nil, fmt.Errorf("tpm: sig is not a TPMT_SIGNATURE: %w", err)
	}
	h, err := verifySignature(ak, sig, q.Quoted)
	if err != nil {
		return nil, fmt.Errorf("tpm: quote signature: %w", err)
	}

	attest, err := UnmarshalExact[tpm2.TPMSAttest](q.Quoted)
	if err != nil {
		return nil, fmt.Errorf("tpm: quoted is not a TPMS_ATTEST: %w", err)
	}
	if attest.Magic != tpm2.TPMGeneratedValue {
		return nil, fmt.Errorf("tpm: quoted has magic 0x%08x, want TPM_GENERATED_VALUE 0x%08x", uint32(attest.Magic), uint32(tpm2.TPMGeneratedValue))
	}
	if attest.Type != tpm2.TPMSTAttestQuote {
		return nil, fmt.Errorf("tpm: quoted is an attestation of type 0x%04x, want TPM_ST_ATTEST_QUOTE 0x%04x", uint16(attest.Type), uint16(tpm2.TPMSTAttestQuote))
	}
	if !bytes.Equal(attest.ExtraData.Buffer, d) {
		return nil, fmt.Errorf("tpm: quote qualifyingData is %x, want D = %x: the kc changed after quoting, or the quote is for another kc", attest.ExtraData.Buffer, d)
	}
	info, err := attest.Attested.Quote()
	if err != nil {
		return nil, fmt.Errorf("tpm: quoted: %w", err)
	}
	if err := checkPCRs(h, info, q.PCRs); err != nil {
		return nil, err
	}

	claims.PCRs = q.PCRs
	claims.FirmwareVersion = attest.FirmwareVersion
	claims.Clock = ClockInfo{
		Clock:        attest.ClockInfo.Clock,
		ResetCount:   attest.ClockInfo.ResetCount,
		RestartCount: attest.ClockInfo.RestartCount,
		Safe:         bool(attest.ClockInfo.Safe),
	}
	return claims, nil
}

// trustAK decides whether the AK is trusted: pinned, or certified by a chain
// to a root. It returns the leaf certificate in the second case.
func (v *Verifier) trustAK(key crypto.PublicKey, fp string, chain [][]byte) (*x509.Certificate, error) {
	for _, k := range v.aks {
		if sameKey(k, key) {
			return nil, nil
		}
	}
	switch {
	case len(chain) == 0:
		return nil, fmt.Errorf("tpm: AK sha256:%s is not pinned and the quote has no akchain", fp)
	case v.roots == nil:
		return nil, fmt.Errorf("tpm: AK sha256:%s is not pinned and no AK CA root is configured for its akchain", fp)
	}
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("tpm: akchain[%d]: %w", i, err)
		}
		allowTPMSubjectAltName(c)
		certs[i] = c
	}
	leaf := certs[0]
	if !sameKey(leaf.PublicKey, key) {
		return nil, fmt.Errorf("tpm: akchain leaf certifies %s, not the AK sha256:%s", fingerprintOrType(leaf.PublicKey), fp)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   v.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("tpm: akchain does not lead to an AK CA root: %w", err)
	}
	return leaf, nil
}

// allowTPMSubjectAltName lets a chain verify whose certificates carry a
// critical subjectAltName with only a directoryName, as TCG profiles
// prescribe for TPM keys (the TPM manufacturer, model and version) and as
// swtpm writes: Go leaves such a SAN among the unhandled critical
// extensions. Names play no part in AK trust, so it is marked handled.
func allowTPMSubjectAltName(c *x509.Certificate) {
	oidSubjectAltName := asn1.ObjectIdentifier{2, 5, 29, 17} // RFC 5280 §4.2.1.6
	c.UnhandledCriticalExtensions = slices.DeleteFunc(c.UnhandledCriticalExtensions,
		func(o asn1.ObjectIdentifier) bool { return o.Equal(oidSubjectAltName) })
}

// checkPCRs checks that the quote's selection and the "pcrs" map name the
// same PCRs, and that their values give the quote's pcrDigest under h.
func checkPCRs(h crypto.Hash, info *tpm2.TPMSQuoteInfo, vals PCRValues) error {
	sel, err := flattenSelection(info.PCRSelect)
	if err != nil {
		return fmt.Errorf("tpm: quote PCR selection: %w", err)
	}
	if len(sel) == 0 {
		return errors.New("tpm: quote PCR selection selects no PCRs")
	}
	quoted := map[selectedPCR]bool{}
	for _, p := range sel {
		quoted[p] = true
		if _, ok := vals[p.bank][p.index]; !ok {
			return fmt.Errorf("tpm: PCR %s:%d is quoted but missing from pcrs", p.bank, p.index)
		}
	}
	for _, b := range slices.Sorted(maps.Keys(vals)) {
		for _, i := range slices.Sorted(maps.Keys(vals[b])) {
			if !quoted[selectedPCR{b, i}] {
				return fmt.Errorf("tpm: PCR %s:%d is in pcrs but not quoted", b, i)
			}
		}
	}
	digest, err := pcrDigest(h, sel, vals)
	if err != nil {
		return fmt.Errorf("tpm: %w", err)
	}
	if !bytes.Equal(digest, info.PCRDigest.Buffer) {
		return fmt.Errorf("tpm: pcrs do not match the quote: their digest is %x, the quote's pcrDigest is %x", digest, info.PCRDigest.Buffer)
	}
	return nil
}
