package tsm

import (
	"encoding/binary"

	"github.com/google/go-sev-guest/abi"
)

// Recognisable starts of the three outblob formats, used only to name a
// mismatch between the report map's provider and its outblob; each appraiser
// then parses its own format in full with its library.
const (
	// sniffTDXTEEType is the TEE type of a TDX quote header (Intel TDX DCAP Quote
	// Generation Library and Quote Verification Library, A.3: offset 4, 0x81).
	sniffTDXTEEType = 0x81
	// sniffCCATag is the CBOR tag 399 (Arm CCA attestation token collection)
	// as its first three bytes.
	sniffCCATag = "\xd9\x01\x8f"
)

// sniffProvider names the provider whose evidence outblob looks like, or ""
// when it looks like none of them.
func sniffProvider(outblob []byte) string {
	switch {
	case len(outblob) == abi.ReportSize && abi.ValidateReportFormat(outblob) == nil:
		return ProviderSNP
	case len(outblob) >= 8 && (binary.LittleEndian.Uint16(outblob[0:2]) == 4 || binary.LittleEndian.Uint16(outblob[0:2]) == 5) &&
		binary.LittleEndian.Uint32(outblob[4:8]) == sniffTDXTEEType:
		return ProviderTDX
	case len(outblob) >= len(sniffCCATag) && string(outblob[:len(sniffCCATag)]) == sniffCCATag:
		return ProviderCCA
	}
	return ""
}
