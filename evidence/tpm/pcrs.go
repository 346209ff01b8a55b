package tpm

import (
	"crypto"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2"
)

// Bank names a PCR bank by its hash algorithm, with the TPM_ALG_ID value the
// TPM uses for it (TPM 2.0 Part 2 §6.3). The quote map's "pcrs" keys are
// these values.
type Bank uint16

// The PCR banks this package quotes and appraises.
const (
	BankSHA1   = Bank(tpm2.TPMAlgSHA1)
	BankSHA256 = Bank(tpm2.TPMAlgSHA256)
	BankSHA384 = Bank(tpm2.TPMAlgSHA384)
	BankSHA512 = Bank(tpm2.TPMAlgSHA512)
)

// Limits on a PCR selection and on the "pcrs" map of a quote.
const (
	// NumPCRs is the number of PCRs of a PC Client TPM: indices 0 to 23.
	NumPCRs = 24
	// MaxBanks bounds the banks one quote may cover.
	MaxBanks = 4
)

// knownBanks lists the banks this package knows, in algorithm-ID order.
func knownBanks() []Bank { return []Bank{BankSHA1, BankSHA256, BankSHA384, BankSHA512} }

// name returns the name tpm2-tools uses for the bank, or "".
func (b Bank) name() string {
	switch b {
	case BankSHA1:
		return "sha1"
	case BankSHA256:
		return "sha256"
	case BankSHA384:
		return "sha384"
	case BankSHA512:
		return "sha512"
	}
	return ""
}

// String returns the bank's name ("sha256"), or its algorithm ID in hex.
func (b Bank) String() string {
	if n := b.name(); n != "" {
		return n
	}
	return fmt.Sprintf("alg 0x%04x", uint16(b))
}

// Hash returns the hash function of the bank, or an error for a bank this
// package does not know.
func (b Bank) Hash() (crypto.Hash, error) {
	if b.name() == "" {
		return 0, fmt.Errorf("PCR bank %s is not supported", b)
	}
	return tpm2.TPMIAlgHash(b).Hash()
}

// ParseBank returns the bank named s ("sha1", "sha256", "sha384", "sha512").
func ParseBank(s string) (Bank, error) {
	for _, b := range knownBanks() {
		if b.name() == s {
			return b, nil
		}
	}
	return 0, fmt.Errorf("PCR bank %q is not supported (want sha1, sha256, sha384 or sha512)", s)
}

// PCRSelection says which PCRs of which banks a quote covers.
type PCRSelection map[Bank][]int

// PCRValues holds PCR values by bank and index.
type PCRValues map[Bank]map[int][]byte

// DefaultPCRs returns the selection an Attester quotes when none is
// configured: PCRs 0 to 7 of the SHA-256 bank, the firmware and boot loader
// measurements of a PC Client platform.
func DefaultPCRs() PCRSelection {
	return PCRSelection{BankSHA256: {0, 1, 2, 3, 4, 5, 6, 7}}
}

// ParsePCRSelection parses a selection written as tpm2-tools does, with
// ranges allowed: "sha256:0-7", "sha1:0,1+sha256:0-7,10".
func ParsePCRSelection(s string) (PCRSelection, error) {
	sel := PCRSelection{}
	for part := range strings.SplitSeq(s, "+") {
		name, list, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("PCR selection %q: %q is not BANK:INDICES", s, part)
		}
		b, err := ParseBank(name)
		if err != nil {
			return nil, fmt.Errorf("PCR selection %q: %w", s, err)
		}
		if _, dup := sel[b]; dup {
			return nil, fmt.Errorf("PCR selection %q: bank %s appears twice", s, b)
		}
		for item := range strings.SplitSeq(list, ",") {
			lo, hi, isRange := strings.Cut(item, "-")
			first, err := strconv.Atoi(lo)
			if err != nil {
				return nil, fmt.Errorf("PCR selection %q: %q is not a PCR index", s, item)
			}
			last := first
			if isRange {
				if last, err = strconv.Atoi(hi); err != nil || last < first {
					return nil, fmt.Errorf("PCR selection %q: %q is not a range of PCR indices", s, item)
				}
			}
			for i := first; i <= last && i < NumPCRs+1; i++ {
				sel[b] = append(sel[b], i)
			}
		}
	}
	if err := sel.validate(); err != nil {
		return nil, fmt.Errorf("PCR selection %q: %w", s, err)
	}
	return sel, nil
}

// String writes the selection in the form ParsePCRSelection reads, banks in
// algorithm order and indices ascending.
func (s PCRSelection) String() string {
	var parts []string
	for _, b := range s.banks() {
		idx := slices.Sorted(slices.Values(s[b]))
		nums := make([]string, len(idx))
		for i, v := range idx {
			nums[i] = strconv.Itoa(v)
		}
		parts = append(parts, b.String()+":"+strings.Join(nums, ","))
	}
	return strings.Join(parts, "+")
}

// banks returns the selection's banks in algorithm-ID order.
func (s PCRSelection) banks() []Bank {
	return slices.Sorted(maps.Keys(s))
}

// validate checks that the selection is one this package can quote: at least
// one PCR, at most MaxBanks known banks, indices 0 to 23 without repeats.
func (s PCRSelection) validate() error {
	if len(s) == 0 {
		return errors.New("selects no PCRs")
	}
	if len(s) > MaxBanks {
		return fmt.Errorf("selects %d banks, at most %d allowed", len(s), MaxBanks)
	}
	for b, idx := range s {
		if _, err := b.Hash(); err != nil {
			return err
		}
		if len(idx) == 0 {
			return fmt.Errorf("bank %s selects no PCRs", b)
		}
		seen := map[int]bool{}
		for _, i := range idx {
			if i < 0 || i >= NumPCRs {
				return fmt.Errorf("bank %s: PCR index %d is out of range 0-%d", b, i, NumPCRs-1)
			}
			if seen[i] {
				return fmt.Errorf("bank %s: PCR %d selected twice", b, i)
			}
			seen[i] = true
		}
	}
	return nil
}

// tpml converts a valid selection to the TPM's TPML_PCR_SELECTION, banks in
// algorithm-ID order, with the 3-byte bitmap of a PC Client TPM.
func (s PCRSelection) tpml() tpm2.TPMLPCRSelection {
	var out tpm2.TPMLPCRSelection
	for _, b := range s.banks() {
		idx := make([]uint, len(s[b]))
		for i, v := range s[b] {
			idx[i] = uint(v)
		}
		out.PCRSelections = append(out.PCRSelections, tpm2.TPMSPCRSelection{
			Hash:      tpm2.TPMIAlgHash(b),
			PCRSelect: tpm2.PCClientCompatible.PCRs(idx...),
		})
	}
	return out
}

// selectedPCR is one PCR of a TPML_PCR_SELECTION, in the order the TPM
// digests it.
type selectedPCR struct {
	bank  Bank
	index int
}

// flattenSelection lists the PCRs a TPML_PCR_SELECTION selects in the order
// TPM2_Quote hashes them (selections in order, indices ascending within each),
// rejecting unknown banks, a bank that appears twice, bitmaps longer than 4
// bytes and indices above 23. The list may be empty.
func flattenSelection(sel tpm2.TPMLPCRSelection) ([]selectedPCR, error) {
	if len(sel.PCRSelections) > MaxBanks {
		return nil, fmt.Errorf("selects %d banks, at most %d allowed", len(sel.PCRSelections), MaxBanks)
	}
	var out []selectedPCR
	seen := map[Bank]bool{}
	for _, ps := range sel.PCRSelections {
		b := Bank(ps.Hash)
		if _, err := b.Hash(); err != nil {
			return nil, err
		}
		if seen[b] {
			return nil, fmt.Errorf("bank %s appears twice", b)
		}
		seen[b] = true
		if len(ps.PCRSelect) > 4 {
			return nil, fmt.Errorf("bank %s: selection bitmap is %d bytes, at most 4 allowed", b, len(ps.PCRSelect))
		}
		for byteIdx, bits := range ps.PCRSelect {
			for bit := range 8 {
				if bits&(1<<bit) == 0 {
					continue
				}
				i := byteIdx*8 + bit
				if i >= NumPCRs {
					return nil, fmt.Errorf("bank %s: PCR index %d is out of range 0-%d", b, i, NumPCRs-1)
				}
				out = append(out, selectedPCR{b, i})
			}
		}
	}
	return out, nil
}

// pcrDigest computes what TPM2_Quote puts in pcrDigest: the hash h of the
// selected PCR values concatenated in selection order. Every selected PCR
// must have a value in vals.
func pcrDigest(h crypto.Hash, sel []selectedPCR, vals PCRValues) ([]byte, error) {
	hh := h.New()
	for _, p := range sel {
		v, ok := vals[p.bank][p.index]
		if !ok {
			return nil, fmt.Errorf("PCR %s:%d is quoted but has no value in pcrs", p.bank, p.index)
		}
		hh.Write(v)
	}
	return hh.Sum(nil), nil
}
