package sim

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
)

// provider is one simulated configfs-tsm provider: the part of a TEE guest
// driver that turns an inblob into signed evidence. Each simulated platform
// (snp.go, tdx.go) fills one in and hands it to newTSMClient.
type provider struct {
	// name is what the provider attribute reads (without the newline the
	// kernel appends): tsm.ProviderSNP, tsm.ProviderTDX, ...
	name string
	// privlevels is true when the provider has privilege levels (SEV-SNP:
	// VMPLs 0-3); writing privlevel to a provider without them fails.
	privlevels bool
	// privlevelFloor is the lowest privilege level a report may be requested
	// for (SEV-SNP: the guest's own VMPL), and the level used when none is
	// written.
	privlevelFloor uint
	// outblob returns the evidence over inblob at privilege level privlevel.
	// It is called on every read of outblob, with the entry's lock held.
	outblob func(inblob []byte, privlevel uint) ([]byte, error)
	// auxblob returns the auxiliary blob (SEV-SNP: the certificate table);
	// nil when the provider has none.
	auxblob func() ([]byte, error)
}

// maxPrivlevel is the highest privilege level configfs-tsm accepts.
const maxPrivlevel = 3

// Attributes of a report entry (Documentation/ABI/testing/configfs-tsm).
const (
	attrInBlob         = "inblob"
	attrPrivlevel      = "privlevel"
	attrOutBlob        = "outblob"
	attrAuxBlob        = "auxblob"
	attrProvider       = "provider"
	attrPrivlevelFloor = "privlevel_floor"
)

// newTSMClient returns a fake configfs-tsm whose report subsystem answers with
// p, behaving as the kernel does where the tsm.Attester can tell: inblob holds
// at most 64 bytes, privlevel accepts floor to 3, provider ends with a newline,
// and every write bumps the entry's generation.
func newTSMClient(p provider) configfsi.Client {
	sub := &faketsm.ReportSubsystem{
		MakeEntry: func() *faketsm.ReportEntry {
			return &faketsm.ReportEntry{
				InAttrs: map[string]*faketsm.ReportAttributeState{
					attrInBlob:    {},
					attrPrivlevel: {Value: fmt.Appendf(nil, "%d\n", p.privlevelFloor)},
				},
				// faketsm serves a fresh entry's read-only attributes from
				// here (ReadAttr answers once something has been written).
				ROAttrs: map[string][]byte{
					attrProvider:       []byte(p.name + "\n"),
					attrPrivlevelFloor: fmt.Appendf(nil, "%d\n", p.privlevelFloor),
				},
			}
		},
		CheckInAttr: func(_ *faketsm.ReportEntry, attr string, contents []byte) error {
			switch attr {
			case attrInBlob:
				if len(contents) > tsm.InBlobSize {
					return syscall.EINVAL
				}
				return nil
			case attrPrivlevel:
				if !p.privlevels {
					return fmt.Errorf("%s has no privilege levels: %w", p.name, syscall.EINVAL)
				}
				level, err := configfsi.Kstrtouint(contents, 10, 8)
				if err != nil || level > maxPrivlevel || uint(level) < p.privlevelFloor {
					return fmt.Errorf("privlevel %q is not in %d..%d: %w", contents, p.privlevelFloor, maxPrivlevel, syscall.EINVAL)
				}
				return nil
			default:
				return fmt.Errorf("attribute %q is not writable: %w", attr, syscall.EACCES)
			}
		},
		ReadAttr: func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
			switch attr {
			case attrProvider:
				return []byte(p.name + "\n"), nil
			case attrPrivlevelFloor:
				return fmt.Appendf(nil, "%d\n", p.privlevelFloor), nil
			case attrAuxBlob:
				if p.auxblob == nil {
					return nil, nil
				}
				return p.auxblob()
			case attrOutBlob:
				level, err := configfsi.Kstrtouint(e.InAttrs[attrPrivlevel].Value, 10, 8)
				if err != nil {
					return nil, fmt.Errorf("privlevel: %w", err)
				}
				inblob := e.InAttrs[attrInBlob].Value
				if len(inblob) == 0 {
					return nil, errors.New("inblob was not written")
				}
				return p.outblob(inblob, uint(level))
			default:
				return nil, os.ErrNotExist
			}
		},
		Random: rand.Reader,
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}
