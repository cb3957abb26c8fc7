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

// StampMeta returns resource with meta.versionId and meta.lastUpdated set to
// version and t, keeping every other byte of the resource as it was (other
// meta elements such as profile, security and tag are kept in place). When
// the resource has no meta, one is inserted after "id" (or first). It returns
// an error when resource is not a valid JSON object.
func StampMeta(resource []byte, version int64, t time.Time) ([]byte, error) {
	members, err := parseObject(resource)
	if err != nil {
		return nil, fmt.Errorf("stamp meta: %w", err)
	}
	stamp := func(dst []byte) []byte {
		dst = append(dst, `"versionId":"`...)
		dst = strconv.AppendInt(dst, version, 10)
		dst = append(dst, `","lastUpdated":"`...)
		dst = append(dst, FormatInstant(t)...)
		return append(dst, '"')
	}
	// Where the new meta goes when there is none: after "id", else after
	// "resourceType", else first.
	insertAfter, hasMeta := -1, false
	for i, m := range members {
		switch m.key {
		case "meta":
			hasMeta = true
		case "id":
			insertAfter = i
		case "resourceType":
			if insertAfter < 0 {
				insertAfter = i
			}
		}
	}
	out := make([]byte, 0, len(resource)+80)
	out = append(out, '{')
	if !hasMeta && insertAfter < 0 {
		out = appendMeta(out, stamp, nil)
		if len(members) > 0 {
			out = append(out, ',')
		}
	}
	for i, m := range members {
		if i > 0 {
			out = append(out, ',')
		}
		if m.key == "meta" {
			inner, err := parseObject(m.value)
			if err != nil {
				return nil, fmt.Errorf("stamp meta: meta: %w", err)
			}
			out = appendMeta(out, stamp, inner)
			continue
		}
		out = appendString(out, m.key)
		out = append(out, ':')
		out = append(out, m.value...)
		if !hasMeta && i == insertAfter {
			out = append(out, ',')
			out = appendMeta(out, stamp, nil)
		}
	}
	return append(out, '}'), nil
}

// appendMeta writes a meta element: the stamp first, then every member of
// the old meta except versionId and lastUpdated, unchanged.
func appendMeta(dst []byte, stamp func([]byte) []byte, old []member) []byte {
	dst = append(dst, `"meta":{`...)
	dst = stamp(dst)
	for _, m := range old {
		if m.key == "versionId" || m.key == "lastUpdated" {
			continue
		}
		dst = append(dst, ',')
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, m.value...)
	}
	return append(dst, '}')
}
