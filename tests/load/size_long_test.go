//go:build load

package load

// The long load: go test -tags load ./tests/load.
const (
	loadIssuances  = 1000
	loadClients    = 32
	faultIssuances = 400
	faultClients   = 32
)
