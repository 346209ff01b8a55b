package inspect

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Text layout.
const (
	// shortHexMax is the longest byte string text output shows in full
	// (48 bytes: a SHA-384 measurement); longer ones are shortened, and
	// JSON output has them in full.
	shortHexMax = 48
	// shortHexHead and shortHexTail are the bytes kept of a shortened one.
	shortHexHead, shortHexTail = 16, 8
	// maxTextJSON bounds a JSON value shown inline in text output.
	maxTextJSON = 120
	// indentStep is the indentation of each nesting level.
	indentStep = "  "
)

// WriteText writes the result as readable text: a line naming how the input
// was read, then the tree with aligned labels, notes marked with "!".
func (r *Result) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "input: %s, %d bytes\n\n", r.Encoding, r.Size)
	writeNodeText(bw, r.Root, "")
	for _, p := range r.Problems {
		fmt.Fprintf(bw, "\n! %s\n", p)
	}
	return bw.Flush()
}

// writeNodeText writes a node's title, its notes and its fields.
func writeNodeText(w *bufio.Writer, n *Node, indent string) {
	fmt.Fprintf(w, "%s%s\n", indent, n.Title)
	writeBody(w, n, indent+indentStep)
}

// writeBody writes a node's notes and fields at indent.
func writeBody(w *bufio.Writer, n *Node, indent string) {
	for _, s := range n.Notes {
		fmt.Fprintf(w, "%s! %s\n", indent, s)
	}
	writeFields(w, n.Fields, indent)
}

// writeFields writes one line per visible field, labels padded to the
// widest label of the block, and descends into nested values.
func writeFields(w *bufio.Writer, fields []Field, indent string) {
	width := 0
	for _, f := range fields {
		if !f.JSONOnly {
			width = max(width, len(f.label()))
		}
	}
	for _, f := range fields {
		if f.JSONOnly {
			continue
		}
		line := func(value string) {
			if f.Note != "" {
				if value != "" {
					value += "  "
				}
				value += f.Note
			}
			if value == "" {
				fmt.Fprintf(w, "%s%s\n", indent, f.label())
				return
			}
			fmt.Fprintf(w, "%s%-*s  %s\n", indent, width, f.label(), value)
		}
		if f.Text != "" {
			line(f.Text)
			continue
		}
		switch v := f.Value.(type) {
		case *Node:
			line(v.Title)
			writeBody(w, v, indent+indentStep)
		case Group:
			line("")
			writeFields(w, v, indent+indentStep)
		case List:
			if s, ok := scalarList(v); ok {
				line(s)
				continue
			}
			line("")
			items := make([]Field, len(v))
			for i, it := range v {
				items[i] = Field{Key: "[" + strconv.Itoa(i) + "]", Value: it}
			}
			writeFields(w, items, indent+indentStep)
		default:
			line(scalarText(v))
		}
	}
}

// label returns the text label of f.
func (f Field) label() string {
	if f.Label != "" {
		return f.Label
	}
	return f.Key
}

// scalarList renders a list of scalars on one line, or reports that it
// holds nested values.
func scalarList(l List) (string, bool) {
	if len(l) == 0 {
		return "(none)", true
	}
	parts := make([]string, len(l))
	for i, v := range l {
		switch v.(type) {
		case *Node, Group, List:
			return "", false
		}
		parts[i] = scalarText(v)
	}
	return strings.Join(parts, ", "), true
}

// scalarText renders one scalar value.
func scalarText(v any) string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return `""`
		}
		return v
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case Hex:
		return shortHex(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339)
	case JSON:
		s := string(v)
		if len(s) > maxTextJSON {
			s = s[:maxTextJSON] + "..."
		}
		return s
	case nil:
		return "(none)"
	default:
		return fmt.Sprint(v)
	}
}

// shortHex shows b in hex, shortened to its first and last bytes when long.
func shortHex(b []byte) string {
	if len(b) == 0 {
		return "(empty)"
	}
	if len(b) <= shortHexMax {
		return hex.EncodeToString(b)
	}
	return fmt.Sprintf("%s...%s (%d bytes)", hex.EncodeToString(b[:shortHexHead]), hex.EncodeToString(b[len(b)-shortHexTail:]), len(b))
}
