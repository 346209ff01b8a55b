//go:build !load

package load

// The default, short load: part of the normal test run.
const (
	loadIssuances  = 64
	loadClients    = 8
	faultIssuances = 48
	faultClients   = 8
)
