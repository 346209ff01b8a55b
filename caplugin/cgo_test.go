//go:build cgo

package caplugin_test

// cgoEnabled says the TPM simulator is built in; without cgo its test skips.
const cgoEnabled = true
