package tsm

import (
	"fmt"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
)

// parseSNPCertTable decodes the GHCB certificate table that SEV-SNP guests find in
// auxblob (GHCB specification 56421, §4.1.8.1: 24-byte entries {GUID, offset,
// length} ended by an all-zero entry, then the certificates). Every entry must
// lie inside the table and each GUID appear at most once. An empty auxblob
// yields an empty chain.
func parseSNPCertTable(auxblob []byte) (*spb.CertificateChain, error) {
	chain := &spb.CertificateChain{Extras: map[string][]byte{}}
	if len(auxblob) == 0 {
		return chain, nil
	}
	headers, err := abi.ParseSnpCertTableHeader(auxblob)
	if err != nil {
		return nil, fmt.Errorf("sev-snp: auxblob certificate table: %w", err)
	}
	seen := map[string]bool{}
	for i, h := range headers {
		// go-sev-guest adds offset and length in 32 bits; check in 64 first.
		if end := uint64(h.Offset) + uint64(h.Length); end > uint64(len(auxblob)) {
			return nil, fmt.Errorf("sev-snp: auxblob certificate table entry %d (%s) ends at byte %d, past the end of the %d-byte table", i, h.GUID, end, len(auxblob))
		}
		if seen[h.GUID.String()] {
			return nil, fmt.Errorf("sev-snp: auxblob certificate table has GUID %s twice", h.GUID)
		}
		seen[h.GUID.String()] = true
	}
	var table abi.CertTable
	if err := table.Unmarshal(auxblob); err != nil {
		return nil, fmt.Errorf("sev-snp: auxblob certificate table: %w", err)
	}
	for _, e := range table.Entries {
		switch e.GUID.String() {
		case abi.VcekGUID:
			chain.VcekCert = e.RawCert
		case abi.VlekGUID:
			chain.VlekCert = e.RawCert
		case abi.AskGUID:
			chain.AskCert = e.RawCert
		case abi.ArkGUID:
			chain.ArkCert = e.RawCert
		default:
			chain.Extras[e.GUID.String()] = e.RawCert
		}
	}
	return chain, nil
}
