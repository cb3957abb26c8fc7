package fhir

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// errSyntax is wrapped by every scanner error.
var errSyntax = errors.New("invalid JSON")

// scanner is the reference JSON validator the walker is checked against
// (FuzzWalkerMatchesScanner): simple and slow, it lives only in tests.
// It walks one JSON value in data. It validates as it goes and reports
// the byte offset of the first problem.
type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at byte %d: %s", errSyntax, s.pos, fmt.Sprintf(format, args...))
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// member is one name/value pair of an object, as raw byte spans.
type member struct {
	key   string // decoded key
	value []byte // raw value bytes, exactly as written
}

// object reads an object starting at s.pos and returns its members in order.
func (s *scanner) object(depth int) ([]member, error) {
	if depth > maxDepth {
		return nil, s.errorf("nesting deeper than %d", maxDepth)
	}
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		return nil, s.errorf("expected object")
	}
	s.pos++
	var members []member
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return members, nil
	}
	for {
		s.skipSpace()
		key, err := s.str()
		if err != nil {
			return nil, err
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return nil, s.errorf("expected ':' after object key")
		}
		s.pos++
		s.skipSpace()
		start := s.pos
		if err := s.value(depth + 1); err != nil {
			return nil, err
		}
		members = append(members, member{key: key, value: s.data[start:s.pos]})
		s.skipSpace()
		if s.pos >= len(s.data) {
			return nil, s.errorf("unterminated object")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return members, nil
		default:
			return nil, s.errorf("expected ',' or '}' in object")
		}
	}
}

// value skips over one JSON value, validating it.
func (s *scanner) value(depth int) error {
	if depth > maxDepth {
		return s.errorf("nesting deeper than %d", maxDepth)
	}
	s.skipSpace()
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end of input")
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		_, err := s.object(depth)
		return err
	case c == '[':
		return s.array(depth, nil)
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if len(s.data)-s.pos >= len(lit) && string(s.data[s.pos:s.pos+len(lit)]) == lit {
				s.pos += len(lit)
				return nil
			}
		}
		return s.errorf("unexpected character %q", c)
	}
}

// array skips an array, calling each (when not nil) with the raw bytes of
// every element.
func (s *scanner) array(depth int, each func(raw []byte) error) error {
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return nil
	}
	for {
		s.skipSpace()
		start := s.pos
		if err := s.value(depth + 1); err != nil {
			return err
		}
		if each != nil {
			if err := each(s.data[start:s.pos]); err != nil {
				return err
			}
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return s.errorf("unterminated array")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.errorf("expected ',' or ']' in array")
		}
	}
}

func (s *scanner) number() error {
	start := s.pos
	if s.data[s.pos] == '-' {
		s.pos++
	}
	digits := func() int {
		n := 0
		for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	intStart := s.pos
	if n := digits(); n == 0 || (n > 1 && s.data[intStart] == '0') {
		s.pos = start
		return s.errorf("malformed number")
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if digits() == 0 {
			return s.errorf("malformed number")
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if digits() == 0 {
			return s.errorf("malformed number")
		}
	}
	return nil
}

// str reads a string and returns its decoded value. It rejects control
// characters, bad escapes and invalid UTF-8.
func (s *scanner) str() (string, error) {
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return "", s.errorf("expected string")
	}
	s.pos++
	start := s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			raw := s.data[start:s.pos]
			s.pos++
			if !utf8.Valid(raw) {
				return "", s.errorf("invalid UTF-8 in string")
			}
			return string(raw), nil
		case c == '\\':
			s.pos = start - 1
			return s.escapedStr()
		case c < 0x20:
			return "", s.errorf("control character in string")
		}
		s.pos++
	}
	return "", s.errorf("unterminated string")
}
