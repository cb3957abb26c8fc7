package fhir

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// appendString appends s as a JSON string with the minimal escaping of
// encoding/json without HTML escaping.
func appendString(dst []byte, s string) []byte {
	return appendCanonicalString(dst, []byte(s))
}

// appendCanonicalString appends the decoded text s as a JSON string: '"'
// and '\\' escaped, \n \r \t short, other control characters as \u00XX, all
// else as is. A lone surrogate kept by appendUnescaped (as the six bytes
// `\udXXX` after a 0xFF marker byte) is written as that escape.
func appendCanonicalString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0xFF && i+6 < len(s) && s[i+1] == '\\':
			dst = append(dst, s[i+1:i+7]...) // a lone surrogate escape
			i += 6
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// appendUnescaped decodes the escapes of a validated raw JSON string. A
// surrogate pair becomes its UTF-8 character; a lone surrogate, which has
// no UTF-8 form, is kept as its lowercase \uXXXX escape after a 0xFF byte
// (never valid in UTF-8 text, so it cannot be confused with content), so
// that different lone surrogates stay different.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if pair := utf16.DecodeRune(r, hex4(raw[i+3:i+7])); pair != utf8.RuneError {
						dst = utf8.AppendRune(dst, pair)
						i += 6
						continue
					}
				}
				dst = append(dst, 0xFF, '\\', 'u')
				dst = strconv.AppendUint(dst, uint64(r), 16)
				continue
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, raw[i])
		}
	}
	return dst
}

// hex4 decodes four validated hex digits.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		default:
			r |= rune(c-'A') + 10
		}
	}
	return r
}
