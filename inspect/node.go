package inspect

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Kind names what a Node is. The values are part of the JSON output.
type Kind string

// The kinds of object Inspect recognises.
const (
	KindPEM         Kind = "pem"                // several PEM blocks
	KindPayload     Kind = "payload"            // device-attest-01 JWS payload {"attObj": ...}
	KindAttObj      Kind = "attestation-object" // {"fmt": "cmw", "attStmt": {"cmw": ...}}
	KindBundle      Kind = "bundle"             // CMW collection {kc, platform}
	KindKC          Kind = "kc"                 // key-confirmation claims set (UCCS)
	KindTPMQuote    Kind = "tpm-quote"          // TPM 2.0 quote map
	KindTSMReport   Kind = "tsm-report"         // configfs-tsm report map
	KindSNPReport   Kind = "sev-snp-report"     // AMD SEV-SNP ATTESTATION_REPORT
	KindTDXQuote    Kind = "tdx-quote"          // Intel TDX quote (version 4)
	KindSNPCerts    Kind = "sev-snp-cert-table" // SEV-SNP certificate table (auxblob)
	KindEAR         Kind = "ear"                // EAR, a signed JWT
	KindJWS         Kind = "jws"                // a compact JWS whose payload is not an EAR
	KindCertificate Kind = "certificate"        // X.509 certificate
	KindCMWRecord   Kind = "cmw-record"         // a CMW record [type, value, indicator]
	KindOpaque      Kind = "opaque"             // bytes that were not, or could not be, decoded
)

// Node is one recognised object: its kind, a one-line title, its fields in
// a fixed order, and notes for the reader.
//
// In JSON a Node is an object with "kind", "title", one member per field (by
// Field.Key, in order) and "notes" when there are any; member names are
// stable. In text it is its title, then one aligned line per field.
type Node struct {
	// Kind says what the node is.
	Kind Kind
	// Title describes it in one line, for text output.
	Title string
	// Fields are its contents, in display order.
	Fields []Field
	// Notes are remarks a reader must see (a signature not verified, a
	// value that does not match).
	Notes []string
}

// Field is one named value of a Node or a Group.
//
// Value is one of: string, bool, int, int64, uint64, Hex, time.Time, Group,
// List, JSON or *Node.
type Field struct {
	// Key is the JSON member name: lower case with underscores, stable.
	Key string
	// Label is the text label; empty means Key.
	Label string
	// Value is the value.
	Value any
	// Text, when set, is shown instead of Value in text output, on one line
	// (Value is still what JSON shows).
	Text string
	// Note is appended to the value in text output only; what it says must
	// also be in some field.
	Note string
	// JSONOnly hides the field from text output (full DER, raw claims).
	JSONOnly bool
}

// Hex is a byte string, shown as lower-case hex: in full in JSON, shortened
// in text when longer than shortHexMax bytes.
type Hex []byte

// MarshalJSON encodes the bytes as a hex string.
func (h Hex) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

// Group is a set of fields shown nested: a JSON object, an indented block of
// text.
type Group []Field

// List is a sequence of values, a JSON array.
type List []any

// JSON is a JSON value kept as it was (EAR claims, JWS header).
type JSON json.RawMessage

// field builds a Field with an explicit text label.
func field(key, label string, v any) Field { return Field{Key: key, Label: label, Value: v} }

// add appends a field to n.
func (n *Node) add(key, label string, v any) *Field {
	n.Fields = append(n.Fields, field(key, label, v))
	return &n.Fields[len(n.Fields)-1]
}

// note appends a note to n.
func (n *Node) note(format string, args ...any) {
	n.Notes = append(n.Notes, fmt.Sprintf(format, args...))
}

// MarshalJSON encodes n as described on Node.
func (n *Node) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	writeMember(&b, "kind", n.Kind, true)
	writeMember(&b, "title", n.Title, false)
	for _, f := range n.Fields {
		if f.Key == "kind" || f.Key == "title" || f.Key == "notes" {
			return nil, fmt.Errorf("inspect: field name %q is reserved", f.Key)
		}
		v, err := jsonValue(f.Value)
		if err != nil {
			return nil, fmt.Errorf("inspect: %s: %w", f.Key, err)
		}
		writeMember(&b, f.Key, json.RawMessage(v), false)
	}
	if len(n.Notes) > 0 {
		writeMember(&b, "notes", n.Notes, false)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// MarshalJSON encodes g as an object whose members keep the fields' order.
func (g Group) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range g {
		v, err := jsonValue(f.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Key, err)
		}
		writeMember(&b, f.Key, json.RawMessage(v), i == 0)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// MarshalJSON encodes l as an array.
func (l List) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, v := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		j, err := jsonValue(v)
		if err != nil {
			return nil, err
		}
		b.Write(j)
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// MarshalJSON returns the JSON value as it is.
func (j JSON) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("null"), nil
	}
	return json.RawMessage(j).MarshalJSON()
}

// jsonValue encodes one field value.
func jsonValue(v any) ([]byte, error) {
	switch v := v.(type) {
	case time.Time:
		return json.Marshal(v.UTC().Format(time.RFC3339))
	case nil:
		return []byte("null"), nil
	default:
		return json.Marshal(v)
	}
}

// writeMember writes "key": value, with a comma unless first.
func writeMember(b *bytes.Buffer, key string, v any, first bool) {
	if !first {
		b.WriteByte(',')
	}
	k, _ := json.Marshal(key) // a string always encodes
	b.Write(k)
	b.WriteByte(':')
	j, err := json.Marshal(v)
	if err != nil {
		// Only Node, Group, List and JSON can fail, and they are handled
		// by their callers before reaching here.
		j, _ = json.Marshal(err.Error())
	}
	b.Write(j)
}
