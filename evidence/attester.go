package evidence

import (
	"context"
	"crypto"
)

// Evidence is platform evidence as it travels: its media type and its bytes.
type Evidence struct {
	// MediaType names the evidence format (docs/protocol.md §4), for example
	// MediaTypeTSMReport or MediaTypeTPMQuote.
	MediaType string
	// Data is the encoded evidence.
	Data []byte
}

// Attester produces platform evidence whose freshness field carries a
// caller-chosen value. Backends: evidence/tpm (TPM2_Quote), evidence/tsm
// (configfs-tsm) and evidence/sim (simulated SEV-SNP and TDX).
type Attester interface {
	// BindingHash is the hash that turns the kc bytes into D for this
	// platform (docs/protocol.md §3): SHA-256 for a TPM, SHA-512 for
	// configfs-tsm.
	BindingHash() crypto.Hash
	// Attest returns evidence that carries d in its freshness field
	// (TPM2_Quote qualifyingData, configfs-tsm inblob).
	Attest(ctx context.Context, d []byte) (Evidence, error)
}
