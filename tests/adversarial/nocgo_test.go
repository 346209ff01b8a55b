//go:build !cgo

package adversarial_test

// cgoEnabled says the TPM simulator is built in; without cgo the TPM
// attacks skip.
const cgoEnabled = false
