package evidence

import (
	"errors"
	"fmt"
	"mime"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/cmw"
)

// The bundle: a CMW collection (RFC 9999) in record form that carries the kc
// and the platform evidence (docs/protocol.md §4).
const (
	// CollectionType is the bundle's "__cmwc_t".
	CollectionType = "tag:attest-acme.dev,2026:key-confirmation/v1"
	// MediaTypeBundle is the media type of the whole bundle, as sent to a verifier.
	MediaTypeBundle = "application/cmw+cbor"
	// LabelKC and LabelPlatform are the bundle's two item labels.
	LabelKC       = "kc"
	LabelPlatform = "platform"
	// MaxItemSize bounds each record's value bytes.
	MaxItemSize = 32 << 10
	// MaxBundleSize bounds the whole bundle; it fits in a 64 KiB attestation object.
	MaxBundleSize = 64 << 10
)

// Bundle is a decoded bundle.
type Bundle struct {
	// KC is the exact kc bytes (tag header included).
	KC []byte
	// Platform is the platform evidence over D = H(KC).
	Platform Evidence
}

// Marshal encodes the bundle with veraison/cmw (deterministic CBOR).
func (b Bundle) Marshal() ([]byte, error) {
	if len(b.KC) > MaxKCSize {
		return nil, fmt.Errorf("bundle: kc is %d bytes, over the limit of %d", len(b.KC), MaxKCSize)
	}
	if len(b.Platform.Data) > MaxItemSize {
		return nil, fmt.Errorf("bundle: platform evidence is %d bytes, over the limit of %d", len(b.Platform.Data), MaxItemSize)
	}
	c, err := cmw.NewCollection(CollectionType)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	for _, it := range []struct {
		label, mediaType string
		value            []byte
	}{{LabelKC, MediaTypeKC, b.KC}, {LabelPlatform, b.Platform.MediaType, b.Platform.Data}} {
		m, err := cmw.NewMonad(it.mediaType, it.value, cmw.Evidence)
		if err != nil {
			return nil, fmt.Errorf("bundle: %s record: %w", it.label, err)
		}
		if err := c.AddCollectionItem(it.label, m); err != nil {
			return nil, fmt.Errorf("bundle: %s record: %w", it.label, err)
		}
	}
	out, err := c.MarshalCBOR()
	if err != nil {
		return nil, fmt.Errorf("bundle: encoding: %w", err)
	}
	return out, nil
}

// ParseBundle decodes a bundle strictly: a CBOR map with exactly "__cmwc_t"
// (equal to CollectionType), "kc" and "platform"; each record an array of exactly
// three elements (text media type, byte string of at most MaxItemSize bytes,
// indicator 4); the kc record's media type MediaTypeKC. Duplicate keys,
// indefinite lengths, CBOR-tag CMWs and trailing bytes are rejected.
//
// The strict pass runs first and with this project's limits; veraison/cmw then
// decodes the same bytes, so what we accept is what CMW tooling reads.
func ParseBundle(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("bundle: %d bytes, over the limit of %d", len(data), MaxBundleSize)
	}
	if err := checkBundleShape(data); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}

	var c cmw.CMW
	if err := c.UnmarshalCBOR(data); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if c.GetKind() != cmw.KindCollection {
		return nil, fmt.Errorf("bundle: a CMW %s, want a collection", c.GetKind())
	}
	b := &Bundle{}
	kcMT, kc, err := collectionRecord(&c, LabelKC)
	if err != nil {
		return nil, err
	}
	if kcMT != MediaTypeKC {
		return nil, fmt.Errorf("bundle: kc record has media type %q, want %q", kcMT, MediaTypeKC)
	}
	b.KC = kc
	if b.Platform.MediaType, b.Platform.Data, err = collectionRecord(&c, LabelPlatform); err != nil {
		return nil, err
	}
	return b, nil
}

// bundleRecord is a CMW record in array form as docs/protocol.md §4 allows it.
type bundleRecord struct {
	_         struct{} `cbor:",toarray"`
	MediaType string
	Value     cbor.RawMessage
	Indicator uint64
}

// checkBundleShape is the strict pass of ParseBundle.
func checkBundleShape(data []byte) error {
	var m map[string]cbor.RawMessage
	if err := strictDec.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("not a CBOR map with text labels: %w", err)
	}
	var ctype string
	if raw, ok := m[cmw.CmwCType]; !ok {
		return fmt.Errorf("label %q is missing", cmw.CmwCType)
	} else if err := strictDec.Unmarshal(raw, &ctype); err != nil {
		return fmt.Errorf("%s is not a text string: %w", cmw.CmwCType, err)
	}
	if ctype != CollectionType {
		return fmt.Errorf("%s is %q, want %q", cmw.CmwCType, ctype, CollectionType)
	}
	for _, label := range []string{LabelKC, LabelPlatform} {
		raw, ok := m[label]
		if !ok {
			return fmt.Errorf("record %q is missing", label)
		}
		if err := checkRecord(label, raw); err != nil {
			return err
		}
	}
	for label := range m {
		if label != cmw.CmwCType && label != LabelKC && label != LabelPlatform {
			return fmt.Errorf("label %q is not allowed (want exactly %q, %q and %q)", label, cmw.CmwCType, LabelKC, LabelPlatform)
		}
	}
	return nil
}

func checkRecord(label string, raw cbor.RawMessage) error {
	var r bundleRecord
	if err := strictDec.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("record %q is not [media type, value, indicator]: %w", label, err)
	}
	var value []byte
	if err := decodeBstr(r.Value, &value); err != nil {
		return fmt.Errorf("record %q value: %w", label, err)
	}
	limit := MaxItemSize
	if label == LabelKC {
		limit = MaxKCSize
	}
	if len(value) > limit {
		return fmt.Errorf("record %q value is %d bytes, over the limit of %d", label, len(value), limit)
	}
	if r.Indicator != uint64(cmw.Evidence) {
		return fmt.Errorf("record %q indicator is %d, want %d (evidence)", label, r.Indicator, cmw.Evidence)
	}
	if _, _, err := mime.ParseMediaType(r.MediaType); err != nil {
		return fmt.Errorf("record %q media type %q: %w", label, r.MediaType, err)
	}
	return nil
}

func collectionRecord(c *cmw.CMW, label string) (string, []byte, error) {
	item, err := c.GetCollectionItem(label)
	if err != nil {
		return "", nil, fmt.Errorf("bundle: %w", err)
	}
	mt, err := item.GetMonadType()
	if err != nil {
		return "", nil, fmt.Errorf("bundle: record %q: %w", label, err)
	}
	v, err := item.GetMonadValue()
	if err != nil {
		return "", nil, fmt.Errorf("bundle: record %q: %w", label, err)
	}
	if len(v) == 0 {
		return "", nil, errors.New("bundle: record " + label + " is empty")
	}
	return mt, v, nil
}
