package fhir

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// ContentHash returns the hex SHA-256 of the canonical form of a resource:
// object keys sorted, insignificant whitespace removed, strings re-escaped
// minimally, number literals kept exactly as written (so 1.50 and 1.5
// differ, as FHIR decimal precision requires), and meta.versionId and
// meta.lastUpdated removed (meta itself is dropped when nothing else is in
// it). Two stores holding the same record therefore agree on its hash
// whatever versions they assigned. It returns an error for invalid JSON or a
// value that is not an object.
func ContentHash(resource []byte) (string, error) {
	canon, err := Canonical(resource)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// Canonical returns the canonical form hashed by ContentHash.
func Canonical(resource []byte) ([]byte, error) {
	members, err := parseObject(resource)
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	out := make([]byte, 0, len(resource))
	var kept []member
	for _, m := range members {
		if m.key == "meta" {
			meta, err := parseObject(m.value)
			if err != nil {
				return nil, fmt.Errorf("canonical json: meta: %w", err)
			}
			meta = slices.DeleteFunc(meta, func(m member) bool {
				return m.key == "versionId" || m.key == "lastUpdated"
			})
			if len(meta) == 0 {
				continue
			}
			m.value, err = appendCanonicalMembers(nil, meta, 1)
			if err != nil {
				return nil, fmt.Errorf("canonical json: %w", err)
			}
		}
		kept = append(kept, m)
	}
	out, err = appendCanonicalMembers(out, kept, 0)
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return out, nil
}

// appendCanonicalMembers writes an object with its members sorted by key.
func appendCanonicalMembers(dst []byte, members []member, depth int) ([]byte, error) {
	slices.SortStableFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(members); i++ {
		if members[i].key == members[i-1].key {
			return nil, fmt.Errorf("%w: duplicate key %q", errSyntax, members[i].key)
		}
	}
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		var err error
		if dst, err = appendCanonicalValue(dst, m.value, depth+1); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// appendCanonicalValue writes the canonical form of one raw, already
// validated JSON value.
func appendCanonicalValue(dst, raw []byte, depth int) ([]byte, error) {
	s := &scanner{data: raw}
	s.skipSpace()
	switch raw[s.pos] {
	case '{':
		members, err := s.object(depth)
		if err != nil {
			return nil, err
		}
		return appendCanonicalMembers(dst, members, depth)
	case '[':
		dst = append(dst, '[')
		first := true
		err := s.array(depth, func(elem []byte) error {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			var err error
			dst, err = appendCanonicalValue(dst, elem, depth+1)
			return err
		})
		if err != nil {
			return nil, err
		}
		return append(dst, ']'), nil
	case '"':
		v, err := s.str()
		if err != nil {
			return nil, err
		}
		return appendString(dst, v), nil
	}
	// Numbers and literals: exactly as written, without surrounding blanks.
	start := s.pos
	if err := s.value(depth); err != nil {
		return nil, err
	}
	return append(dst, raw[start:s.pos]...), nil
}
