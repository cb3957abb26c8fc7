package synth

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// enc is a small append-only JSON writer. It tracks only whether a comma is
// needed before the next member or element; callers keep the nesting right.
type enc struct {
	b    []byte
	need bool
}

func (e *enc) sep() {
	if e.need {
		e.b = append(e.b, ',')
	}
}

// begin opens an object in value position.
func (e *enc) begin() { e.sep(); e.b = append(e.b, '{'); e.need = false }

// end closes an object.
func (e *enc) end() { e.b = append(e.b, '}'); e.need = true }

// beginArr opens an array in value position.
func (e *enc) beginArr() { e.sep(); e.b = append(e.b, '['); e.need = false }

// endArr closes an array.
func (e *enc) endArr() { e.b = append(e.b, ']'); e.need = true }

// k writes a member name; keys are ASCII identifiers and never escaped.
func (e *enc) k(key string) {
	e.sep()
	e.b = append(e.b, '"')
	e.b = append(e.b, key...)
	e.b = append(e.b, '"', ':')
	e.need = false
}

// ob writes key and opens an object.
func (e *enc) ob(key string) { e.k(key); e.begin() }

// ar writes key and opens an array.
func (e *enc) ar(key string) { e.k(key); e.beginArr() }

// s writes a string member.
func (e *enc) s(key, v string) { e.k(key); e.sv(v) }

// sv writes a string value.
func (e *enc) sv(v string) {
	e.sep()
	e.b = appendQuoted(e.b, v)
	e.need = true
}

// num writes a number member from its exact literal, so that decimal
// precision such as 5.60 survives.
func (e *enc) num(key, lit string) {
	e.k(key)
	e.b = append(e.b, lit...)
	e.need = true
}

// i writes an integer member.
func (e *enc) i(key string, v int64) {
	e.k(key)
	e.b = strconv.AppendInt(e.b, v, 10)
	e.need = true
}

// bo writes a boolean member.
func (e *enc) bo(key string, v bool) {
	e.k(key)
	e.b = strconv.AppendBool(e.b, v)
	e.need = true
}

// dt writes a FHIR dateTime (or instant) member in UTC with seconds.
func (e *enc) dt(key string, t time.Time) {
	e.k(key)
	e.b = append(e.b, '"')
	e.b = t.UTC().AppendFormat(e.b, "2006-01-02T15:04:05Z07:00")
	e.b = append(e.b, '"')
	e.need = true
}

// date writes a FHIR date member.
func (e *enc) date(key string, t time.Time) {
	e.k(key)
	e.b = append(e.b, '"')
	e.b = t.UTC().AppendFormat(e.b, "2006-01-02")
	e.b = append(e.b, '"')
	e.need = true
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string. UTF-8 is kept as is; quotes,
// backslashes and control characters are escaped; invalid UTF-8 becomes
// U+FFFD.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, "\ufffd"...)
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// coding writes one Coding object in value position.
func (e *enc) coding(system, code, display string) {
	e.begin()
	e.s("system", system)
	e.s("code", code)
	if display != "" {
		e.s("display", display)
	}
	e.end()
}

// cc writes a CodeableConcept member with a single coding.
func (e *enc) cc(key, system, code, display string) {
	e.ob(key)
	e.ar("coding")
	e.coding(system, code, display)
	e.endArr()
	e.end()
}

// ccv writes a CodeableConcept with a single coding in value position.
func (e *enc) ccv(system, code, display string) {
	e.begin()
	e.ar("coding")
	e.coding(system, code, display)
	e.endArr()
	e.end()
}

// cct writes a CodeableConcept member holding text only.
func (e *enc) cct(key, text string) {
	e.ob(key)
	e.s("text", text)
	e.end()
}

// ref writes a Reference member.
func (e *enc) ref(key, reference string) {
	e.ob(key)
	e.s("reference", reference)
	e.end()
}

// refv writes a Reference in value position.
func (e *enc) refv(reference string) {
	e.begin()
	e.s("reference", reference)
	e.end()
}

// qty writes a Quantity member with a UCUM unit.
func (e *enc) qty(key, value, unit, ucum string) {
	e.ob(key)
	e.num("value", value)
	e.s("unit", unit)
	e.s("system", ucumSystem)
	e.s("code", ucum)
	e.end()
}

// period writes a Period member; a zero end is left out.
func (e *enc) period(key string, start, end time.Time) {
	e.ob(key)
	e.dt("start", start)
	if !end.IsZero() {
		e.dt("end", end)
	}
	e.end()
}
