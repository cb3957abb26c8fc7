package fhir

import (
	"encoding/json"
	"unicode/utf8"
)

// escapedStr reads a string that contains escapes (s.pos at its opening
// quote) and decodes it with encoding/json, after checking the raw bytes are
// valid UTF-8 (encoding/json would silently replace bad bytes).
func (s *scanner) escapedStr() (string, error) {
	start := s.pos
	s.pos++
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '\\':
			s.pos += 2
			continue
		case c == '"':
			s.pos++
			raw := s.data[start:s.pos]
			if !utf8.Valid(raw) {
				return "", s.errorf("invalid UTF-8 in string")
			}
			var out string
			if err := json.Unmarshal(raw, &out); err != nil {
				return "", s.errorf("bad string escape")
			}
			return out, nil
		case c < 0x20:
			return "", s.errorf("control character in string")
		}
		s.pos++
	}
	return "", s.errorf("unterminated string")
}

// parseObject parses data as exactly one JSON object (surrounding blanks
// allowed) and returns its members in order.
func parseObject(data []byte) ([]member, error) {
	s := &scanner{data: data}
	members, err := s.object(0)
	if err != nil {
		return nil, err
	}
	s.skipSpace()
	if s.pos != len(data) {
		return nil, s.errorf("unexpected data after the object")
	}
	return members, nil
}
