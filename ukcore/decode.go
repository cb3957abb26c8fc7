package ukcore

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeObject decodes data as one JSON object, keeping numbers as
// json.Number so that no precision is lost or overflows. Nested objects
// are map[string]any, arrays []any, strings string, true and false bool,
// null nil. Anything but white space after the object means data is not a
// single resource.
//
// It gives exactly what encoding/json's Decoder (with UseNumber) gives for
// the same input, and accepts and rejects the same inputs
// (TestDecodeObject_MatchesEncodingJSON and FuzzDecodeObject hold it to
// that: duplicate keys keep the last, invalid UTF-8 and lone surrogates
// become U+FFFD), in one pass instead of encoding/json's two; it was a
// tenth of Validate's time.
func decodeObject(data []byte) (map[string]any, bool) {
	d := decoder{data: data}
	d.space()
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return nil, false
	}
	obj, ok := d.object(1)
	if !ok {
		return nil, false
	}
	if len(bytes.TrimSpace(data[d.pos:])) != 0 {
		return nil, false
	}
	return obj, true
}

// decodeMaxDepth is encoding/json's nesting limit, kept so that the two
// accept the same inputs (Validate rejects depths over maxDepth first).
const decodeMaxDepth = 10000

// decoder is a recursive-descent JSON decoder over data; pos is the next
// byte to read. Each method returns false on a syntax error, leaving pos
// anywhere.
type decoder struct {
	data []byte
	pos  int
}

// space skips JSON white space.
func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// value decodes the value at pos (white space already skipped) at nesting
// depth depth (the value's own level, for objects and arrays).
func (d *decoder) value(depth int) (any, bool) {
	if d.pos >= len(d.data) {
		return nil, false
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		m, ok := d.object(depth)
		return m, ok
	case c == '[':
		return d.array(depth)
	case c == '"':
		return d.str()
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, false
}

// literal consumes lit at pos.
func (d *decoder) literal(lit string) bool {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(lit)) {
		return false
	}
	d.pos += len(lit)
	return true
}

// object decodes the object at pos ('{').
func (d *decoder) object(depth int) (map[string]any, bool) {
	if depth > decodeMaxDepth {
		return nil, false
	}
	d.pos++ // '{'
	m := map[string]any{}
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return m, true
	}
	for {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, false
		}
		k, ok := d.str()
		if !ok {
			return nil, false
		}
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, false
		}
		d.pos++
		d.space()
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		m[k] = v
		d.space()
		if d.pos >= len(d.data) {
			return nil, false
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.space()
		case '}':
			d.pos++
			return m, true
		default:
			return nil, false
		}
	}
}

// array decodes the array at pos ('[').
func (d *decoder) array(depth int) ([]any, bool) {
	if depth > decodeMaxDepth {
		return nil, false
	}
	d.pos++ // '['
	a := []any{}
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return a, true
	}
	for {
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		d.space()
		if d.pos >= len(d.data) {
			return nil, false
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.space()
		case ']':
			d.pos++
			return a, true
		default:
			return nil, false
		}
	}
}

// number decodes the number at pos, by the JSON grammar, as a json.Number
// holding its literal text.
func (d *decoder) number() (any, bool) {
	start := d.pos
	if d.data[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case d.digits() == 0:
		return nil, false
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if d.digits() == 0 {
			return nil, false
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if d.digits() == 0 {
			return nil, false
		}
	}
	return json.Number(d.data[start:d.pos]), true
}

// digits consumes decimal digits and returns how many.
func (d *decoder) digits() int {
	start := d.pos
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
	}
	return d.pos - start
}

// str decodes the string at pos ('"'). Strings of printable ASCII and
// valid UTF-8 without escapes, nearly all of them, are copied once.
func (d *decoder) str() (string, bool) {
	d.pos++ // '"'
	start := d.pos
	plain := true
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			s := d.data[start:d.pos]
			d.pos++
			if plain {
				return string(s), true
			}
			return unquote(s)
		case c < ' ':
			return "", false
		case c == '\\':
			plain = false
			d.pos++
			if d.pos >= len(d.data) {
				return "", false
			}
			switch d.data[d.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.pos++
			case 'u':
				if d.pos+5 > len(d.data) || !isHex(d.data[d.pos+1:d.pos+5]) {
					return "", false
				}
				d.pos += 5
			default:
				return "", false
			}
		case c < utf8.RuneSelf:
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			d.pos += size
		}
	}
	return "", false
}

// isHex reports whether b holds only hexadecimal digits.
func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// unquote decodes the body of a string that str has checked (escapes well
// formed, no control characters) as encoding/json does: surrogate pairs
// combine, a lone surrogate and each byte of invalid UTF-8 become U+FFFD.
func unquote(s []byte) (string, bool) {
	b := make([]byte, 0, len(s)+utf8.UTFMax)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			switch s[r+1] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := hex4(s[r+2:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if r+6 <= len(s) && s[r] == '\\' && s[r+1] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(s[r+2:])); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							r += 6
							continue
						}
					}
					rr = utf8.RuneError
				}
				b = utf8.AppendRune(b, rr)
				continue
			default: // '"', '\\', '/'
				b = append(b, s[r+1])
			}
			r += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			b = utf8.AppendRune(b, rr)
			r += size
		}
	}
	return string(b), true
}

// hex4 returns the value of the four hexadecimal digits at the start of b
// (checked by str).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
