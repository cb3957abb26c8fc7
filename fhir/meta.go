package fhir

import (
	"fmt"
	"strconv"
	"time"
)

// InstantFormat is how dtm writes FHIR instants: UTC with microseconds, so
// that commit times round-trip exactly through _since.
const InstantFormat = "2006-01-02T15:04:05.000000Z07:00"

// FormatInstant formats t as a FHIR instant in UTC with microseconds.
func FormatInstant(t time.Time) string { return t.UTC().Format(InstantFormat) }

// rawMember is one member of an object as raw spans: the key between its
// quotes, still escaped, and the value as written.
type rawMember struct {
	key     []byte
	escaped bool
	value   []byte
}

// members validates data as one JSON object without duplicate keys and
// returns its members in order.
func members(data []byte) ([]rawMember, error) {
	var out []rawMember
	var keys keySet
	err := walkObject(data, func(key []byte, escaped bool, value []byte) error {
		k := key
		if escaped {
			k = []byte(decodeKey(key, true))
		}
		if keys.add(k) {
			return invalidf("duplicate key %s", quoteID(string(k)))
		}
		out = append(out, rawMember{key: key, escaped: escaped, value: value})
		return nil
	})
	return out, err
}

func (m rawMember) is(name string) bool { return keyIs(m.key, m.escaped, name) }

// StampMeta returns resource with meta.versionId and meta.lastUpdated set to
// version and t, keeping every other byte of the resource as it was (other
// meta elements such as profile, security and tag are kept, in order). When
// the resource has no meta, one is inserted after "id" (else after
// "resourceType", else first). It returns an error matching ErrInvalid when
// resource is not a valid JSON object, has duplicate keys, or has a meta
// that is not an object.
func StampMeta(resource []byte, version int64, t time.Time) ([]byte, error) {
	top, err := members(resource)
	if err != nil {
		return nil, fmt.Errorf("stamp meta: %w", err)
	}
	insertAfter, hasMeta := -1, false
	for i, m := range top {
		switch {
		case m.is("meta"):
			hasMeta = true
		case m.is("id"):
			insertAfter = i
		case m.is("resourceType") && insertAfter < 0:
			insertAfter = i
		}
	}
	stamp := strconv.AppendInt([]byte(`"versionId":"`), version, 10)
	stamp = append(append(append(stamp, `","lastUpdated":"`...), FormatInstant(t)...), '"')
	out := make([]byte, 0, len(resource)+len(stamp)+16)
	out = append(out, '{')
	if !hasMeta && insertAfter < 0 {
		out = appendMeta(out, stamp, nil)
		if len(top) > 0 {
			out = append(out, ',')
		}
	}
	for i, m := range top {
		if i > 0 {
			out = append(out, ',')
		}
		if m.is("meta") {
			if len(m.value) == 0 || m.value[0] != '{' {
				return nil, fmt.Errorf("stamp meta: %w", invalidf("meta is not an object"))
			}
			inner, err := members(m.value)
			if err != nil {
				return nil, fmt.Errorf("stamp meta: meta: %w", err)
			}
			out = appendMeta(out, stamp, inner)
			continue
		}
		out = appendMember(out, m)
		if !hasMeta && i == insertAfter {
			out = appendMeta(append(out, ','), stamp, nil)
		}
	}
	return append(out, '}'), nil
}

// appendMember writes a member exactly as it was written.
func appendMember(dst []byte, m rawMember) []byte {
	dst = append(append(append(dst, '"'), m.key...), '"', ':')
	return append(dst, m.value...)
}

// appendMeta writes a meta element: the stamp first, then every member of
// the old meta except versionId and lastUpdated, unchanged.
func appendMeta(dst, stamp []byte, old []rawMember) []byte {
	dst = append(append(dst, `"meta":{`...), stamp...)
	for _, m := range old {
		if m.is("versionId") || m.is("lastUpdated") {
			continue
		}
		dst = appendMember(append(dst, ','), m)
	}
	return append(dst, '}')
}
