package fhir

import (
	"bytes"
	"errors"
	"io"
)

// jsonStream reads raw JSON values one at a time from a stream, so that a
// Bundle of any size can be read holding only one entry in memory. It only
// finds value boundaries (strings, nesting); callers validate each value
// with the walker.
type jsonStream struct {
	r        io.Reader
	buf      []byte
	pos, end int
	off      int64 // stream offset of buf[0]
	err      error // sticky read error, io.EOF at the end
}

func newJSONStream(r io.Reader) *jsonStream {
	return &jsonStream{r: r, buf: make([]byte, 64<<10)}
}

// offset is the stream offset of the next byte.
func (s *jsonStream) offset() int64 { return s.off + int64(s.pos) }

// more makes at least one unread byte available, reporting false at the
// end of the stream or on a read error (in s.err).
func (s *jsonStream) more() bool {
	if s.pos < s.end {
		return true
	}
	s.off += int64(s.end)
	s.pos, s.end = 0, 0
	for s.err == nil {
		n, err := s.r.Read(s.buf)
		s.end = n
		if err != nil {
			s.err = err
		}
		if n > 0 {
			return true
		}
	}
	return false
}

// skipBOM skips a UTF-8 byte order mark at the start of the stream.
func (s *jsonStream) skipBOM() {
	for s.end < 3 && s.err == nil {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err != nil {
			s.err = err
		}
	}
	if s.end >= 3 && string(s.buf[:3]) == "\xef\xbb\xbf" {
		s.pos = 3
	}
}

// readErr returns the error to report when the stream ended early.
func (s *jsonStream) readErr() error {
	if s.err == nil || s.err == io.EOF {
		return invalidf("invalid JSON at byte %d: unexpected end of input", s.offset())
	}
	return s.err
}

// peek skips blanks and returns the next byte without consuming it.
func (s *jsonStream) peek() (byte, error) {
	for s.more() {
		switch c := s.buf[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c, nil
		}
	}
	return 0, s.readErr()
}

// expect consumes the next non-blank byte, which must be c.
func (s *jsonStream) expect(c byte, what string) error {
	got, err := s.peek()
	if err != nil {
		return err
	}
	if got != c {
		return invalidf("invalid JSON at byte %d: expected %s", s.offset(), what)
	}
	s.pos++
	return nil
}

// atEnd reports whether only blanks remain in the stream.
func (s *jsonStream) atEnd() (bool, error) {
	_, err := s.peek()
	if err == nil {
		return false, nil
	}
	if s.err == io.EOF {
		return true, nil
	}
	return false, err
}

// errValueTooLarge is returned by readValue for a value over its limit.
var errValueTooLarge = errors.New("value too large")

// readValue appends the raw bytes of the next JSON value to dst. It
// returns errValueTooLarge, having consumed what it read, when the value
// is longer than limit. Syntax inside the value is not checked.
func (s *jsonStream) readValue(dst []byte, limit int) ([]byte, error) {
	c, err := s.peek()
	if err != nil {
		return dst, err
	}
	start := len(dst)
	depth, inStr, esc := 0, false, false
	scalar := c != '{' && c != '[' && c != '"'
	for s.more() {
		chunk := s.buf[s.pos:s.end]
		i, done := 0, false
		for ; i < len(chunk) && !done; i++ {
			b := chunk[i]
			switch {
			case scalar:
				if !isScalarByte(b) {
					done = true
					i-- // not part of the value
				}
			case inStr:
				switch {
				case esc:
					esc = false
				case b == '\\':
					esc = true
				case b == '"':
					inStr = false
					done = depth == 0
				default:
					// Jump to the next quote or backslash (vectorised).
					i += stringRun(chunk[i:]) - 1
				}
			case b == '"':
				inStr = true
			case b == '{' || b == '[':
				depth++
			case b == '}' || b == ']':
				depth--
				done = depth <= 0
			}
		}
		if len(dst)-start+i > limit {
			s.pos += i
			return dst[:start], errValueTooLarge
		}
		dst = append(dst, chunk[:i]...)
		s.pos += i
		if done {
			return dst, nil
		}
	}
	if scalar && s.err == io.EOF && len(dst) > start {
		return dst, nil // a scalar ends at the end of the stream
	}
	return dst, s.readErr()
}

// stringRun returns the length of the prefix of b, inside a string, that
// holds no quote or backslash.
func stringRun(b []byte) int {
	q := bytes.IndexByte(b, '"')
	if q < 0 {
		q = len(b)
	}
	if k := bytes.IndexByte(b[:q], '\\'); k >= 0 {
		return k
	}
	return q
}

func isScalarByte(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '-' || b == '+' || b == '.'
}
