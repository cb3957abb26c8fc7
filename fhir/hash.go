package fhir

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
)

// ContentHash returns the hex SHA-256 of the canonical form of a resource:
// object keys sorted, insignificant whitespace removed, strings re-escaped
// minimally, number literals kept exactly as written (so 1.50 and 1.5
// differ, as FHIR decimal precision requires), and meta.versionId and
// meta.lastUpdated removed (meta itself is dropped when nothing else is in
// it). Two stores holding the same record therefore agree on its hash
// whatever versions they assigned. It returns an error matching ErrInvalid
// for invalid JSON, duplicate keys, or a value that is not an object.
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
	if err := walkObject(resource, nil); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	c := &canon{out: make([]byte, 0, len(resource))}
	if _, err := c.object(resource, skipBlank(resource, 0), true); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return c.out, nil
}

// canon writes the canonical form of JSON that walkObject has already
// validated, in one pass: members are written in input order, and an
// object's members are re-ordered only when their keys were not sorted.
type canon struct {
	out     []byte
	scratch []byte
}

// keySpan is one written member of an object: its decoded key and where its
// `"key":value` bytes lie in out.
type keySpan struct {
	key      []byte
	from, to int
}

// object writes the object at data[pos] and returns the position after it.
// top is true for the resource itself, whose meta loses versionId and
// lastUpdated.
func (c *canon) object(data []byte, pos int, top bool) (int, error) {
	start := len(c.out)
	c.out = append(c.out, '{')
	var stack [16]keySpan
	spans := stack[:0]
	pos = skipBlank(data, pos+1)
	for data[pos] != '}' {
		rawKey, end, escaped := stringSpan(data, pos)
		key := rawKey
		if escaped {
			key = appendUnescaped(nil, rawKey)
		}
		pos = skipBlank(data, skipBlank(data, end)+1) // past ':'
		var skip bool
		from := len(c.out)
		if len(spans) > 0 {
			c.out = append(c.out, ',')
		}
		c.out = appendCanonicalString(c.out, key)
		c.out = append(c.out, ':')
		var err error
		if top && string(key) == "meta" && data[pos] == '{' {
			pos, skip, err = c.meta(data, pos)
		} else {
			pos, err = c.value(data, pos)
		}
		if err != nil {
			return 0, err
		}
		if skip {
			c.out = c.out[:from]
		} else {
			if len(spans) > 0 {
				from++ // the comma is not part of the member
			}
			spans = append(spans, keySpan{key: key, from: from, to: len(c.out)})
		}
		pos = skipBlank(data, pos)
		if data[pos] == ',' {
			pos = skipBlank(data, pos+1)
		}
	}
	if err := c.order(start, spans); err != nil {
		return 0, err
	}
	c.out = append(c.out, '}')
	return pos + 1, nil
}

// order rewrites the members written since start in key order, when they
// are not already, and rejects duplicate keys.
func (c *canon) order(start int, spans []keySpan) error {
	cmp := func(a, b keySpan) int { return bytes.Compare(a.key, b.key) }
	if slices.IsSortedFunc(spans, cmp) {
		for i := 1; i < len(spans); i++ {
			if bytes.Equal(spans[i].key, spans[i-1].key) {
				return invalidf("duplicate key %s", quoteID(string(spans[i].key)))
			}
		}
		return nil
	}
	slices.SortFunc(spans, cmp)
	for i := 1; i < len(spans); i++ {
		if bytes.Equal(spans[i].key, spans[i-1].key) {
			return invalidf("duplicate key %s", quoteID(string(spans[i].key)))
		}
	}
	c.scratch = append(c.scratch[:0], c.out[start:]...)
	c.out = append(c.out[:start], '{')
	for i, s := range spans {
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, c.scratch[s.from-start:s.to-start]...)
	}
	return nil
}

// meta writes the resource's meta without versionId and lastUpdated; skip
// is true when nothing else is in it, so that meta is left out.
func (c *canon) meta(data []byte, pos int) (next int, skip bool, err error) {
	mark := len(c.out)
	next, err = c.object(data, pos, false)
	if err != nil {
		return 0, false, err
	}
	// Re-walk the written canonical meta and drop the two server fields.
	written := append([]byte(nil), c.out[mark:]...)
	c.out = append(c.out[:mark], '{')
	n := 0
	err = walkObject(written, func(key []byte, _ bool, value []byte) error {
		if string(key) == "versionId" || string(key) == "lastUpdated" {
			return nil
		}
		if n > 0 {
			c.out = append(c.out, ',')
		}
		n++
		c.out = append(append(append(append(c.out, '"'), key...), '"', ':'), value...)
		return nil
	})
	c.out = append(c.out, '}')
	return next, n == 0, err
}

// value writes the value at data[pos] and returns the position after it.
func (c *canon) value(data []byte, pos int) (int, error) {
	switch data[pos] {
	case '{':
		return c.object(data, pos, false)
	case '[':
		c.out = append(c.out, '[')
		pos = skipBlank(data, pos+1)
		for n := 0; data[pos] != ']'; n++ {
			if n > 0 {
				c.out = append(c.out, ',')
			}
			var err error
			if pos, err = c.value(data, pos); err != nil {
				return 0, err
			}
			pos = skipBlank(data, pos)
			if data[pos] == ',' {
				pos = skipBlank(data, pos+1)
			}
		}
		c.out = append(c.out, ']')
		return pos + 1, nil
	case '"':
		raw, end, escaped := stringSpan(data, pos)
		if escaped {
			c.out = appendCanonicalString(c.out, appendUnescaped(nil, raw))
		} else {
			c.out = append(append(append(c.out, '"'), raw...), '"')
		}
		return end, nil
	}
	// Numbers and literals, exactly as written.
	end := pos
	for end < len(data) && !endsLiteral(data[end]) {
		end++
	}
	c.out = append(c.out, data[pos:end]...)
	return end, nil
}

// skipBlank returns the position of the first non-blank byte at or after pos.
func skipBlank(data []byte, pos int) int {
	for pos < len(data) {
		switch data[pos] {
		case ' ', '\t', '\n', '\r':
			pos++
		default:
			return pos
		}
	}
	return pos
}

// stringSpan returns the raw bytes between the quotes of the validated
// string at data[pos], the position after it, and whether it has escapes.
func stringSpan(data []byte, pos int) (raw []byte, end int, escaped bool) {
	i := pos + 1
	for data[i] != '"' {
		if data[i] == '\\' {
			escaped = true
			i++
		}
		i++
	}
	return data[pos+1 : i], i + 1, escaped
}

// endsLiteral reports whether c ends a number or literal.
func endsLiteral(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}
