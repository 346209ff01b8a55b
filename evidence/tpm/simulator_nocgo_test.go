//go:build !cgo

package tpm

// haveSimulator says whether this build has the in-process simulator.
const haveSimulator = false
