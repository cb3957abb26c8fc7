package fhir

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 200

// walker is a validating JSON walker that, unlike scanner, allocates
// nothing: objects and arrays are visited through callbacks that receive
// raw byte spans of data. It accepts exactly what scanner accepts (same
// grammar, same UTF-8 rules, same maxDepth); FuzzWalkerMatchesScanner keeps
// the two in step. It exists because ingest runs ParseHeader and
// Compartment on every resource, and scanner allocates a member slice and
// key strings for every nested object.
type walker struct {
	data []byte
	pos  int

	// Optional hooks, so that a Bundle entry is read in a single pass.
	// sub, when set, receives the members of the object that is the value
	// of subKey in the top-level object, whose span is then recorded in
	// subStart:subEnd. refs, when set, receives the span (quotes included)
	// of every string value of a member named "reference", at any depth.
	sub              memberFunc
	subKey           string
	subStart, subEnd int
	refs             func(start, end int) error
}

func (w *walker) errorf(format string, args ...any) error {
	return invalidf("invalid JSON at byte %d: %s", w.pos, fmt.Sprintf(format, args...))
}

func (w *walker) skipSpace() {
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// memberFunc receives one object member: the key as raw bytes between the
// quotes (escapes not decoded; escaped tells whether there are any) and the
// raw value.
type memberFunc func(key []byte, escaped bool, value []byte) error

// value validates one JSON value at w.pos.
func (w *walker) value(depth int) error {
	if depth > maxDepth {
		return w.errorf("nesting deeper than %d", maxDepth)
	}
	w.skipSpace()
	if w.pos >= len(w.data) {
		return w.errorf("unexpected end of input")
	}
	switch c := w.data[w.pos]; {
	case c == '{':
		return w.object(depth, nil)
	case c == '[':
		return w.array(depth, nil)
	case c == '"':
		_, _, err := w.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return w.number()
	case c == 't':
		return w.literal("true")
	case c == 'f':
		return w.literal("false")
	case c == 'n':
		return w.literal("null")
	default:
		return w.errorf("unexpected character %q", c)
	}
}

func (w *walker) literal(lit string) error {
	if len(w.data)-w.pos >= len(lit) && string(w.data[w.pos:w.pos+len(lit)]) == lit {
		w.pos += len(lit)
		return nil
	}
	return w.errorf("unexpected character %q", w.data[w.pos])
}

// object validates an object at w.pos (after blanks), calling each, when
// not nil, for every member in order.
func (w *walker) object(depth int, each memberFunc) error {
	if depth > maxDepth {
		return w.errorf("nesting deeper than %d", maxDepth)
	}
	w.skipSpace()
	if w.pos >= len(w.data) || w.data[w.pos] != '{' {
		return w.errorf("expected object")
	}
	w.pos++
	w.skipSpace()
	if w.pos < len(w.data) && w.data[w.pos] == '}' {
		w.pos++
		return nil
	}
	for {
		w.skipSpace()
		key, escaped, err := w.str()
		if err != nil {
			return err
		}
		w.skipSpace()
		if w.pos >= len(w.data) || w.data[w.pos] != ':' {
			return w.errorf("expected ':' after object key")
		}
		w.pos++
		w.skipSpace()
		start := w.pos
		if err := w.memberValue(depth, key, escaped); err != nil {
			return err
		}
		if each != nil {
			if err := each(key, escaped, w.data[start:w.pos]); err != nil {
				return err
			}
		}
		w.skipSpace()
		if w.pos >= len(w.data) {
			return w.errorf("unterminated object")
		}
		switch w.data[w.pos] {
		case ',':
			w.pos++
		case '}':
			w.pos++
			return nil
		default:
			return w.errorf("expected ',' or '}' in object")
		}
	}
}

// memberValue validates the value of a member of an object at depth,
// calling the sub and refs hooks when they apply.
func (w *walker) memberValue(depth int, key []byte, escaped bool) error {
	start := w.pos
	if w.sub != nil && depth == 0 && start < len(w.data) && w.data[start] == '{' && keyIs(key, escaped, w.subKey) {
		if err := w.object(depth+1, w.sub); err != nil {
			return err
		}
		w.subStart, w.subEnd = start, w.pos
		return nil
	}
	if err := w.value(depth + 1); err != nil {
		return err
	}
	if w.refs != nil && w.data[start] == '"' && keyIs(key, escaped, "reference") {
		return w.refs(start, w.pos)
	}
	return nil
}

// array validates an array at w.pos ('['), calling each, when not nil,
// with every element.
func (w *walker) array(depth int, each func(raw []byte) error) error {
	w.pos++ // '['
	w.skipSpace()
	if w.pos < len(w.data) && w.data[w.pos] == ']' {
		w.pos++
		return nil
	}
	for {
		w.skipSpace()
		start := w.pos
		if err := w.value(depth + 1); err != nil {
			return err
		}
		if each != nil {
			if err := each(w.data[start:w.pos]); err != nil {
				return err
			}
		}
		w.skipSpace()
		if w.pos >= len(w.data) {
			return w.errorf("unterminated array")
		}
		switch w.data[w.pos] {
		case ',':
			w.pos++
		case ']':
			w.pos++
			return nil
		default:
			return w.errorf("expected ',' or ']' in array")
		}
	}
}

// number validates a number with the grammar of scanner.number.
func (w *walker) number() error {
	start := w.pos
	if w.data[w.pos] == '-' {
		w.pos++
	}
	intStart := w.pos
	if n := w.digits(); n == 0 || (n > 1 && w.data[intStart] == '0') {
		w.pos = start
		return w.errorf("malformed number")
	}
	if w.pos < len(w.data) && w.data[w.pos] == '.' {
		w.pos++
		if w.digits() == 0 {
			return w.errorf("malformed number")
		}
	}
	if w.pos < len(w.data) && (w.data[w.pos] == 'e' || w.data[w.pos] == 'E') {
		w.pos++
		if w.pos < len(w.data) && (w.data[w.pos] == '+' || w.data[w.pos] == '-') {
			w.pos++
		}
		if w.digits() == 0 {
			return w.errorf("malformed number")
		}
	}
	return nil
}

func (w *walker) digits() int {
	n := 0
	for w.pos < len(w.data) && w.data[w.pos] >= '0' && w.data[w.pos] <= '9' {
		w.pos++
		n++
	}
	return n
}

// str validates a string at w.pos and returns its raw content between the
// quotes, and whether it contains escapes. It rejects control characters,
// bad escapes and invalid UTF-8, as scanner.str does. Strings are most of
// a resource's bytes, so plain ASCII is skipped eight bytes at a time.
func (w *walker) str() (raw []byte, escaped bool, err error) {
	data := w.data
	if w.pos >= len(data) || data[w.pos] != '"' {
		return nil, false, w.errorf("expected string")
	}
	start := w.pos + 1
	i := start
	ascii := true
	for {
		for i+8 <= len(data) && plain8(binary.LittleEndian.Uint64(data[i:])) {
			i += 8
		}
		for i < len(data) && plainByte[data[i]] {
			i++
		}
		if i >= len(data) {
			w.pos = i
			return nil, false, w.errorf("unterminated string")
		}
		switch c := data[i]; {
		case c == '"':
			raw = data[start:i]
			w.pos = i + 1
			if !ascii && !utf8.Valid(raw) {
				w.pos = start + firstInvalidUTF8(raw)
				return nil, false, w.errorf("invalid UTF-8 in string")
			}
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(data) {
				w.pos = i
				return nil, false, w.errorf("unterminated string")
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(data)-i < 6 || !isHex4(data[i+2:i+6]) {
					w.pos = i
					return nil, false, w.errorf("bad string escape")
				}
				i += 6
			default:
				w.pos = i
				return nil, false, w.errorf("bad string escape")
			}
		case c < 0x20:
			w.pos = i
			return nil, false, w.errorf("control character in string")
		default: // c >= 0x80, checked as UTF-8 at the end
			ascii = false
			i++
		}
	}
}

// plainByte tells the string bytes that need no attention: printable
// ASCII other than '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plain8 reports whether all eight bytes of x are plain (see plainByte).
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	less20 := (x - ones*0x20) & ^x & highs
	return (less20 | hasZero(x^(ones*'"')) | hasZero(x^(ones*'\\')) | x&highs) == 0
}

// firstInvalidUTF8 returns the offset of the first byte of b that is not
// part of a valid UTF-8 sequence.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// decodeKey returns the decoded text of a raw key or string span.
func decodeKey(raw []byte, escaped bool) string {
	if !escaped {
		return string(raw)
	}
	var s string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	if err := json.Unmarshal(q, &s); err != nil {
		return string(raw) // unreachable: the span was validated
	}
	return s
}

// keyIs reports whether a raw key (see memberFunc) is name.
func keyIs(key []byte, escaped bool, name string) bool {
	if escaped {
		return decodeKey(key, true) == name
	}
	return string(key) == name
}

// isString reports whether a raw value is a JSON string.
func isString(raw []byte) bool { return len(raw) > 0 && raw[0] == '"' }

// stringValue decodes a raw value already known to be a valid JSON string.
func stringValue(raw []byte) string {
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' {
			return decodeKey(inner, true)
		}
	}
	return string(inner)
}

// walkObject validates data as exactly one JSON object (surrounding blanks
// allowed), calling each for every top-level member. It accepts exactly
// what parseObject accepts.
func walkObject(data []byte, each memberFunc) error {
	w := walker{data: data}
	return w.walkObject(each)
}

// walkObject is walkObject with w's hooks.
func (w *walker) walkObject(each memberFunc) error {
	if err := w.object(0, each); err != nil {
		return err
	}
	w.skipSpace()
	if w.pos != len(w.data) {
		return w.errorf("unexpected data after the object")
	}
	return nil
}

// walkValue visits an already validated raw value: each member when it is
// an object; when it is an array, the members of every object in it,
// looking through nested arrays (which FHIR does not have, but hostile
// input may). Other values are ignored.
func walkValue(raw []byte, object memberFunc) error {
	w := walker{data: raw}
	w.skipSpace()
	if w.pos >= len(raw) {
		return nil
	}
	switch raw[w.pos] {
	case '{':
		return w.object(0, object)
	case '[':
		return w.array(0, func(elem []byte) error { return walkValue(elem, object) })
	}
	return nil
}
