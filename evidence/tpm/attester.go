package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/attest-acme/attest-acme/evidence"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// MaxQualifyingData is the most qualifyingData an Attester puts in a quote:
// a TPM2B_DATA holds at most sizeof(TPMT_HA), 2 bytes plus the largest
// digest the TPM implements, which is 34 on a TPM with SHA-256 only. D for a
// TPM is SHA-256(kc), 32 bytes (docs/protocol.md §3).
const MaxQualifyingData = 34

// maxQuoteAttempts bounds how often Attest quotes again when a PCR changed
// between TPM2_Quote and TPM2_PCR_Read.
const maxQuoteAttempts = 3

// Hierarchy is the TPM hierarchy under which an Attester creates its AK.
type Hierarchy int

// Hierarchies an AK can be created under.
const (
	// HierarchyOwner is the storage hierarchy (TPM_RH_OWNER), the default.
	HierarchyOwner Hierarchy = iota
	// HierarchyEndorsement is the endorsement hierarchy (TPM_RH_ENDORSEMENT),
	// where the EK lives.
	HierarchyEndorsement
)

// Range of persistent object handles (TPM 2.0 Part 2 §7.2, TPM_HT_PERSISTENT).
const (
	persistentFirst = 0x81000000
	persistentLast  = 0x81ffffff
)

// Config says how an Attester quotes. The zero value quotes DefaultPCRs with
// an AK created under the owner hierarchy, both with empty passwords.
type Config struct {
	// PCRs is the selection to quote; nil means DefaultPCRs().
	PCRs PCRSelection
	// Hierarchy is where the AK is created from this package's template
	// (a restricted ECC P-256 ECDSA/SHA-256 signing key). The same TPM gives
	// the same AK every time. Ignored when PersistentHandle is set.
	Hierarchy Hierarchy
	// HierarchyAuth is the hierarchy's authorization value, empty on most
	// machines.
	HierarchyAuth []byte
	// PersistentHandle, when not zero, is the handle (0x81xxxxxx) of an AK
	// already made persistent, used instead of creating one. It must be a
	// restricted signing key that never leaves the TPM, ECC or RSA.
	PersistentHandle uint32
	// AKAuth is the password of the persistent AK.
	AKAuth []byte
	// AKChain is the AK's certificate chain (DER, leaf first), sent in the
	// quote's "akchain". Its leaf must certify the AK.
	AKChain [][]byte
	// Logger receives debug records of each quote; nil discards them.
	Logger *slog.Logger
}

// Attester produces TPM quotes over caller-chosen qualifyingData; it
// implements evidence.Attester. It serialises its own TPM commands, so one
// Attester may be shared by goroutines; two Attesters on one TPM connection
// must not attest at the same time, as go-tpm transports are not safe for
// concurrent use. It does not close the TPM.
type Attester struct {
	mu     sync.Mutex
	tpm    transport.TPM
	log    *slog.Logger
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	auth   []byte
	// transient is true when the AK was created here and must be flushed.
	transient bool
	closed    bool

	ak       *akKey
	akPublic []byte // the AK's TPMT_PUBLIC
	inScheme tpm2.TPMTSigScheme
	pcrs     tpm2.TPMLPCRSelection
	pcrsText string
	selected []selectedPCR
	chain    [][]byte
}

var _ evidence.Attester = (*Attester)(nil)

// NewAttester loads or creates the AK on tpm as cfg says and checks the AK
// certificate chain, if any, against it. A created AK stays loaded as a
// transient object until Close flushes it; a TPM has only a few object slots
// (three on the simulator), which the kernel's resource manager (/dev/tpmrm0)
// virtualises but a raw device, swtpm or the simulator do not.
func NewAttester(tpm transport.TPM, cfg Config) (*Attester, error) {
	sel := cfg.PCRs
	if sel == nil {
		sel = DefaultPCRs()
	}
	if err := sel.validate(); err != nil {
		return nil, fmt.Errorf("tpm: PCR selection: %w", err)
	}
	a := &Attester{tpm: tpm, log: cfg.Logger, pcrs: sel.tpml(), pcrsText: sel.String()}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if a.selected, err = flattenSelection(a.pcrs); err != nil {
		return nil, fmt.Errorf("tpm: PCR selection: %w", err)
	}

	if cfg.PersistentHandle != 0 {
		err = a.loadPersistent(cfg.PersistentHandle, cfg.AKAuth)
	} else {
		err = a.createPrimary(cfg.Hierarchy, cfg.HierarchyAuth)
	}
	if err != nil {
		return nil, err
	}
	if err := a.setChain(cfg.AKChain); err != nil {
		a.Close()
		return nil, err
	}
	a.inScheme = tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull}
	if a.ak.scheme == tpm2.TPMAlgNull {
		// The key leaves the scheme to the caller: ECDSA or RSASSA, SHA-256.
		scheme := tpm2.TPMAlgECDSA
		if a.ak.public.Type == tpm2.TPMAlgRSA {
			scheme = tpm2.TPMAlgRSASSA
		}
		a.inScheme = tpm2.TPMTSigScheme{Scheme: scheme,
			Details: tpm2.NewTPMUSigScheme(scheme, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256})}
	}
	return a, nil
}

// createPrimary creates the AK from akTemplate under hierarchy h.
func (a *Attester) createPrimary(h Hierarchy, auth []byte) error {
	var handle tpm2.TPMHandle
	switch h {
	case HierarchyOwner:
		handle = tpm2.TPMRHOwner
	case HierarchyEndorsement:
		handle = tpm2.TPMRHEndorsement
	default:
		return fmt.Errorf("tpm: hierarchy %d is not owner or endorsement", h)
	}
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: handle, Auth: tpm2.PasswordAuth(auth)},
		InPublic:      tpm2.New2B(akTemplate()),
	}.Execute(a.tpm)
	if err != nil {
		return fmt.Errorf("tpm: creating the AK: %w", err)
	}
	a.handle, a.name, a.transient = rsp.ObjectHandle, rsp.Name, true
	if err := a.setPublic(rsp.OutPublic.Bytes()); err != nil {
		a.Close()
		return err
	}
	return nil
}

// loadPersistent uses the persistent AK at handle.
func (a *Attester) loadPersistent(handle uint32, auth []byte) error {
	if handle < persistentFirst || handle > persistentLast {
		return fmt.Errorf("tpm: AK handle 0x%08x is not a persistent handle (0x81000000-0x81ffffff)", handle)
	}
	rsp, err := tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(handle)}.Execute(a.tpm)
	if err != nil {
		return fmt.Errorf("tpm: reading the AK at 0x%08x: %w", handle, err)
	}
	a.handle, a.name, a.auth = tpm2.TPMHandle(handle), rsp.Name, bytes.Clone(auth)
	return a.setPublic(rsp.OutPublic.Bytes())
}

// setPublic checks the AK's public area and keeps it.
func (a *Attester) setPublic(pub []byte) error {
	ak, err := parseAK(pub)
	if err != nil {
		return fmt.Errorf("tpm: the key at 0x%08x cannot be an AK: %w", uint32(a.handle), err)
	}
	a.ak, a.akPublic = ak, bytes.Clone(pub)
	return nil
}

// setChain checks the AK certificate chain: DER certificates, at most
// MaxAKChain, the leaf certifying the AK.
func (a *Attester) setChain(chain [][]byte) error {
	if len(chain) == 0 {
		return nil
	}
	if len(chain) > MaxAKChain {
		return fmt.Errorf("tpm: AK chain has %d certificates, at most %d allowed", len(chain), MaxAKChain)
	}
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("tpm: AK chain certificate %d: %w", i, err)
		}
		if i == 0 && !sameKey(a.ak.key, c.PublicKey) {
			return fmt.Errorf("tpm: AK chain leaf certifies %s, not the AK %s",
				fingerprintOrType(c.PublicKey), fingerprintOrType(a.ak.key))
		}
		a.chain = append(a.chain, bytes.Clone(der))
	}
	return nil
}

// BindingHash returns crypto.SHA256: D for a TPM is SHA-256(kc).
func (a *Attester) BindingHash() crypto.Hash { return crypto.SHA256 }

// AKPublic returns the AK's public key (*ecdsa.PublicKey, or *rsa.PublicKey
// for a persistent RSA AK), for an operator to pin or certify.
func (a *Attester) AKPublic() crypto.PublicKey { return a.ak.key }

// Attest runs TPM2_Quote over the configured PCRs with qualifyingData d,
// reads the quoted PCR values, and returns the quote map (docs/protocol.md
// §4). If a PCR changes between the quote and the read, it quotes again, a
// few times at most. ctx is checked between TPM commands; a command already
// sent is not interrupted.
func (a *Attester) Attest(ctx context.Context, d []byte) (evidence.Evidence, error) {
	if len(d) == 0 {
		return evidence.Evidence{}, errors.New("tpm: qualifyingData is empty; a quote must carry D")
	}
	if len(d) > MaxQualifyingData {
		return evidence.Evidence{}, fmt.Errorf("tpm: qualifyingData is %d bytes, at most %d fit in a quote", len(d), MaxQualifyingData)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return evidence.Evidence{}, errors.New("tpm: attester is closed")
	}
	for attempt := 1; attempt <= maxQuoteAttempts; attempt++ {
		q, fresh, err := a.quoteOnce(ctx, d)
		if err != nil {
			return evidence.Evidence{}, err
		}
		if !fresh {
			a.log.DebugContext(ctx, "tpm: PCRs changed while quoting, quoting again", "attempt", attempt)
			continue
		}
		data, err := q.Marshal()
		if err != nil {
			return evidence.Evidence{}, err
		}
		a.log.DebugContext(ctx, "tpm: quoted", "ak", fingerprintOrType(a.ak.key), "attempt", attempt, "bytes", len(data))
		return evidence.Evidence{MediaType: evidence.MediaTypeTPMQuote, Data: data}, nil
	}
	return evidence.Evidence{}, fmt.Errorf("tpm: PCRs kept changing during %d quotes", maxQuoteAttempts)
}

// quoteOnce quotes and reads the PCRs; fresh is false when the values read
// do not give the quote's pcrDigest, because a PCR was extended in between.
func (a *Attester) quoteOnce(ctx context.Context, d []byte) (q *Quote, fresh bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("tpm: %w", err)
	}
	rsp, err := tpm2.Quote{
		SignHandle:     tpm2.AuthHandle{Handle: a.handle, Name: a.name, Auth: tpm2.PasswordAuth(a.auth)},
		QualifyingData: tpm2.TPM2BData{Buffer: d},
		InScheme:       a.inScheme,
		PCRSelect:      a.pcrs,
	}.Execute(a.tpm)
	if err != nil {
		return nil, false, fmt.Errorf("tpm: TPM2_Quote: %w", err)
	}
	attest, err := rsp.Quoted.Contents()
	if err != nil {
		return nil, false, fmt.Errorf("tpm: TPM2_Quote returned a bad TPMS_ATTEST: %w", err)
	}
	info, err := attest.Attested.Quote()
	if err != nil {
		return nil, false, fmt.Errorf("tpm: TPM2_Quote returned no quote info: %w", err)
	}
	got, err := flattenSelection(info.PCRSelect)
	if err != nil || !slices.Equal(got, a.selected) {
		return nil, false, fmt.Errorf("tpm: the TPM quoted other PCRs than asked (is every bank of %s allocated?)", a.pcrsText)
	}
	hashAlg, err := signatureHash(&rsp.Signature)
	if err != nil {
		return nil, false, fmt.Errorf("tpm: TPM2_Quote signature: %w", err)
	}
	h, err := hashAlg.Hash()
	if err != nil {
		return nil, false, fmt.Errorf("tpm: TPM2_Quote signature: %w", err)
	}

	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("tpm: %w", err)
	}
	vals, err := a.readPCRs(info.PCRSelect)
	if err != nil {
		return nil, false, err
	}
	digest, err := pcrDigest(h, a.selected, vals)
	if err != nil {
		return nil, false, fmt.Errorf("tpm: %w", err)
	}
	if !bytes.Equal(digest, info.PCRDigest.Buffer) {
		return nil, false, nil
	}
	return &Quote{
		AK:      a.akPublic,
		Quoted:  rsp.Quoted.Bytes(),
		Sig:     tpm2.Marshal(rsp.Signature),
		PCRs:    vals,
		AKChain: a.chain,
	}, true, nil
}

// readPCRs reads every PCR of sel with TPM2_PCR_Read, which returns at most
// eight values per call.
func (a *Attester) readPCRs(sel tpm2.TPMLPCRSelection) (PCRValues, error) {
	want, err := flattenSelection(sel)
	if err != nil {
		return nil, fmt.Errorf("tpm: %w", err)
	}
	vals := PCRValues{}
	remaining := PCRSelection{}
	for _, p := range want {
		remaining[p.bank] = append(remaining[p.bank], p.index)
	}
	for len(remaining) > 0 {
		rsp, err := tpm2.PCRRead{PCRSelectionIn: remaining.tpml()}.Execute(a.tpm)
		if err != nil {
			return nil, fmt.Errorf("tpm: TPM2_PCR_Read: %w", err)
		}
		got, err := flattenSelection(rsp.PCRSelectionOut)
		if err != nil {
			return nil, fmt.Errorf("tpm: TPM2_PCR_Read: %w", err)
		}
		if len(got) == 0 {
			return nil, fmt.Errorf("tpm: TPM2_PCR_Read returned none of %s (bank not allocated?)", remaining)
		}
		if len(got) != len(rsp.PCRValues.Digests) {
			return nil, fmt.Errorf("tpm: TPM2_PCR_Read selected %d PCRs but returned %d values", len(got), len(rsp.PCRValues.Digests))
		}
		for k, p := range got {
			i := slices.Index(remaining[p.bank], p.index)
			if i < 0 {
				return nil, fmt.Errorf("tpm: TPM2_PCR_Read returned PCR %s:%d, which was not asked for", p.bank, p.index)
			}
			h, _ := p.bank.Hash() // flattenSelection checked the bank
			v := rsp.PCRValues.Digests[k].Buffer
			if len(v) != h.Size() {
				return nil, fmt.Errorf("tpm: TPM2_PCR_Read returned %d bytes for PCR %s:%d, want %d", len(v), p.bank, p.index, h.Size())
			}
			if vals[p.bank] == nil {
				vals[p.bank] = map[int][]byte{}
			}
			vals[p.bank][p.index] = bytes.Clone(v)
			remaining[p.bank] = slices.Delete(remaining[p.bank], i, i+1)
			if len(remaining[p.bank]) == 0 {
				delete(remaining, p.bank)
			}
		}
	}
	return vals, nil
}

// Close flushes the AK from the TPM when this Attester created it; a
// persistent AK stays. It does not close the TPM. Attest fails afterwards.
func (a *Attester) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	if !a.transient {
		return nil
	}
	if _, err := (tpm2.FlushContext{FlushHandle: a.handle}).Execute(a.tpm); err != nil {
		return fmt.Errorf("tpm: flushing the AK: %w", err)
	}
	return nil
}
