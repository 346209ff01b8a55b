package inspect

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxInputSize bounds what Inspect reads: every artefact of the protocol is
// far smaller (an attestation object is at most 64 KiB), and a certificate
// chain in PEM fits with room to spare.
const MaxInputSize = 1 << 20

// Input encodings, as Result.Encoding names them.
const (
	EncodingBinary    = "binary"
	EncodingText      = "text" // JSON or a compact JWS, read as they are
	EncodingPEM       = "PEM"
	EncodingHex       = "hex"
	EncodingBase64    = "base64"
	EncodingBase64URL = "base64url"
)

// ErrTooLarge reports input over MaxInputSize.
var ErrTooLarge = fmt.Errorf("input is over the limit of %d bytes (1 MiB)", MaxInputSize)

// Options control Inspect.
type Options struct {
	// EARKey, when set, is the pinned EAR verification key (ES256): the
	// signature of every EAR found is verified with it, and a failure is
	// listed in Result.Problems. When nil, no signature is verified and
	// every EAR says so.
	EARKey *ecdsa.PublicKey
	// Now is the clock for statements relative to the present (a
	// certificate's validity, an EAR's age); nil makes none.
	Now func() time.Time
}

// Result is what Inspect found.
type Result struct {
	// Encoding says how the input was read: EncodingBinary, EncodingText,
	// EncodingPEM, EncodingHex, EncodingBase64 or EncodingBase64URL.
	Encoding string
	// Size is the input's size in bytes.
	Size int
	// Root is the recognised object, with everything nested in it.
	Root *Node
	// Problems lists checks that failed: an EAR signature that does not
	// verify under Options.EARKey, or an EARKey with no EAR to verify.
	// Malformed nested content is shown in the tree, not listed here.
	Problems []string
}

// MarshalJSON encodes the result as
// {"input": {"encoding", "size"}, "object": ROOT, "problems": [...]}.
func (r *Result) MarshalJSON() ([]byte, error) {
	problems := r.Problems
	if problems == nil {
		problems = []string{}
	}
	return json.Marshal(struct {
		Input struct {
			Encoding string `json:"encoding"`
			Size     int    `json:"size"`
		} `json:"input"`
		Object   *Node    `json:"object"`
		Problems []string `json:"problems"`
	}{Input: struct {
		Encoding string `json:"encoding"`
		Size     int    `json:"size"`
	}{r.Encoding, r.Size}, Object: r.Root, Problems: problems})
}

// WriteJSON writes the result as indented JSON (see MarshalJSON).
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Attempt is one way of reading the input that did not lead to a
// recognised object.
type Attempt struct {
	// Encoding is how the input was read (EncodingBinary, EncodingHex, ...).
	Encoding string
	// Reason says why it failed: the input is not in that encoding, or
	// what each recogniser said about the decoded bytes.
	Reason string
}

// NotRecognisedError reports input that is none of the objects Inspect
// knows, with every reading that was tried.
type NotRecognisedError struct {
	// Size is the input's size in bytes.
	Size int
	// Attempts lists each reading tried, in order.
	Attempts []Attempt
}

// Error names what was tried, one reading per line.
func (e *NotRecognisedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "input (%d bytes) was not recognised as a device-attest-01 payload, attestation object, bundle, kc, TPM quote, configfs-tsm report, EAR or X.509 certificate; tried:", e.Size)
	for _, a := range e.Attempts {
		fmt.Fprintf(&b, "\n  as %s: %s", a.Encoding, a.Reason)
	}
	return b.String()
}

// Inspect recognises input and decodes it into a tree. It reads the input
// in this order, and takes the first reading whose bytes it recognises:
// PEM (when the input holds a PEM block), the bytes as they are (binary
// CBOR or DER, or text: JSON, a compact JWS), then text as hex, base64 and
// base64url (whitespace ignored).
//
// Input that nothing recognises gives a *NotRecognisedError; input over
// MaxInputSize gives ErrTooLarge. Problems found inside a recognised
// object are in the tree, and failed checks in Result.Problems.
func Inspect(input []byte, opts Options) (*Result, error) {
	if len(input) > MaxInputSize {
		return nil, ErrTooLarge
	}
	in := &inspector{opts: opts}
	res := &Result{Size: len(input)}
	var attempts []Attempt

	if blocks, ok := pemBlocks(input); ok && isUTF8Text(input) {
		res.Encoding, res.Root = EncodingPEM, in.pem(blocks)
		return in.finish(res), nil
	}
	encoding := EncodingBinary
	if isText(input) {
		encoding = EncodingText
	}
	n, why := in.recognise(input, 0)
	if n != nil {
		res.Encoding, res.Root = encoding, n
		return in.finish(res), nil
	}
	attempts = append(attempts, Attempt{Encoding: "raw bytes", Reason: why})

	if !isText(input) {
		attempts = append(attempts, Attempt{Encoding: "text (hex, base64, base64url)", Reason: "not tried: the input is binary, not text"})
		return nil, &NotRecognisedError{Size: len(input), Attempts: attempts}
	}
	compact := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, string(input))
	for _, dec := range []struct {
		name   string
		decode func(string) ([]byte, error)
	}{
		{EncodingHex, decodeHex},
		{EncodingBase64, decodeBase64(base64.StdEncoding)},
		{EncodingBase64URL, decodeBase64(base64.URLEncoding)},
	} {
		b, err := dec.decode(compact)
		if err != nil {
			attempts = append(attempts, Attempt{Encoding: dec.name, Reason: err.Error()})
			continue
		}
		n, why := in.recognise(b, 0)
		if n != nil {
			res.Encoding, res.Root = dec.name, n
			return in.finish(res), nil
		}
		attempts = append(attempts, Attempt{Encoding: dec.name, Reason: fmt.Sprintf("%d bytes decoded; %s", len(b), why)})
	}
	return nil, &NotRecognisedError{Size: len(input), Attempts: attempts}
}

// inspector carries the options and what was found through one Inspect.
type inspector struct {
	opts Options
	// ears counts the EARs found; problems collects failed checks.
	ears     int
	problems []string
}

// finish copies the collected problems into res.
func (in *inspector) finish(res *Result) *Result {
	if in.opts.EARKey != nil && in.ears == 0 {
		in.problems = append(in.problems, "an EAR verification key was given, but the input holds no EAR to verify")
	}
	res.Problems = in.problems
	return res
}

// pemBlocks returns the PEM blocks of input, when it has any.
func pemBlocks(input []byte) ([]*pem.Block, bool) {
	if !bytes.Contains(input, []byte("-----BEGIN ")) {
		return nil, false
	}
	var blocks []*pem.Block
	rest := input
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	return blocks, len(blocks) > 0
}

// pem recognises each PEM block; several blocks become one node.
func (in *inspector) pem(blocks []*pem.Block) *Node {
	nodes := make([]*Node, len(blocks))
	for i, b := range blocks {
		n, why := in.recognise(b.Bytes, 0)
		if n == nil {
			n = opaque(fmt.Sprintf("PEM block %q: not recognised", b.Type), b.Bytes, why)
		}
		nodes[i] = n
	}
	if len(nodes) == 1 {
		return nodes[0]
	}
	n := &Node{Kind: KindPEM, Title: fmt.Sprintf("%d PEM blocks", len(nodes))}
	for i, b := range blocks {
		n.add(fmt.Sprintf("block_%d", i+1), fmt.Sprintf("[%d] %s", i+1, b.Type), nodes[i])
	}
	return n
}

// isText reports whether b is printable ASCII text and whitespace only.
func isText(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// isUTF8Text reports whether b is UTF-8 text without control characters
// other than whitespace: a PEM file, perhaps with explanatory text (as
// "openssl x509 -text" writes it), and not binary evidence that happens to
// embed a PEM chain (a TDX quote carries its PCK chain so).
func isUTF8Text(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// decodeHex decodes hex text, with an optional 0x prefix.
func decodeHex(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if s == "" {
		return nil, errors.New("empty")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hex: %w", err)
	}
	return b, nil
}

// decodeBase64 returns a decoder for enc that accepts the text with or
// without padding.
func decodeBase64(enc *base64.Encoding) func(string) ([]byte, error) {
	return func(s string) ([]byte, error) {
		if s == "" {
			return nil, errors.New("empty")
		}
		b, err := enc.Strict().DecodeString(s)
		if err != nil {
			var err2 error
			if b, err2 = enc.WithPadding(base64.NoPadding).Strict().DecodeString(s); err2 != nil {
				return nil, fmt.Errorf("not %s: %w", encName(enc), err)
			}
		}
		return b, nil
	}
}

// encName names a base64 alphabet for errors.
func encName(enc *base64.Encoding) string {
	if enc == base64.URLEncoding {
		return "base64url"
	}
	return "base64"
}
