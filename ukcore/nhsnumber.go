package ukcore

import "strings"

// NormaliseNHSNumber removes spaces, hyphens and surrounding blanks from an
// NHS number as people write it ("987 654 3210" -> "9876543210").
func NormaliseNHSNumber(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, s)
}

// NHSCheckDigit returns the modulus-11 check digit of the first nine digits
// of an NHS number: digits weighted 10 down to 2, 11 minus the remainder,
// 11 becoming 0. It returns 10 when no valid number has these nine digits,
// and -1 when nine is not nine ASCII digits.
func NHSCheckDigit(nine string) int {
	if len(nine) != 9 {
		return -1
	}
	sum := 0
	for i := 0; i < 9; i++ {
		c := nine[i]
		if c < '0' || c > '9' {
			return -1
		}
		sum += int(c-'0') * (10 - i)
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	return check
}

// ValidNHSNumber reports whether s is exactly ten digits with a correct
// modulus-11 check digit. Callers normalise formatted input first.
func ValidNHSNumber(s string) bool {
	if len(s) != 10 {
		return false
	}
	check := NHSCheckDigit(s[:9])
	return check >= 0 && check <= 9 && int(s[9]-'0') == check && s[9] >= '0' && s[9] <= '9'
}
