//go:build !race

package load

// raceEnabled says the tests run with the race detector; the CA and
// verifier binaries are then built with it too.
const raceEnabled = false
