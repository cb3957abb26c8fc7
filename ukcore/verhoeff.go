package ukcore

// The Verhoeff dihedral-group tables.
var (
	verhoeffD = [10][10]byte{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		{1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
		{2, 3, 4, 0, 1, 7, 8, 9, 5, 6},
		{3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
		{4, 0, 1, 2, 3, 9, 5, 6, 7, 8},
		{5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
		{6, 5, 9, 8, 7, 1, 0, 4, 3, 2},
		{7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
		{8, 7, 6, 5, 9, 3, 2, 1, 0, 4},
		{9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
	}
	verhoeffP = [8][10]byte{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		{1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
		{5, 8, 0, 3, 7, 9, 6, 1, 4, 2},
		{8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
		{9, 4, 5, 3, 1, 2, 6, 8, 7, 0},
		{4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
		{2, 7, 9, 3, 8, 0, 6, 4, 1, 5},
		{7, 0, 4, 6, 9, 1, 3, 2, 5, 8},
	}
	verhoeffInv = [10]byte{0, 4, 3, 2, 1, 5, 6, 7, 8, 9}
)

// VerhoeffValid reports whether the decimal string s (check digit last)
// passes the Verhoeff check. It is false for an empty or non-digit string.
func VerhoeffValid(s string) bool {
	if s == "" {
		return false
	}
	var c byte
	for i := 0; i < len(s); i++ {
		d := s[len(s)-1-i]
		if d < '0' || d > '9' {
			return false
		}
		c = verhoeffD[c][verhoeffP[i%8][d-'0']]
	}
	return c == 0
}

// VerhoeffDigit returns the check digit to append to the decimal string s,
// or -1 if s is empty or not all digits.
func VerhoeffDigit(s string) int {
	if s == "" {
		return -1
	}
	var c byte
	for i := 0; i < len(s); i++ {
		d := s[len(s)-1-i]
		if d < '0' || d > '9' {
			return -1
		}
		c = verhoeffD[c][verhoeffP[(i+1)%8][d-'0']]
	}
	return int(verhoeffInv[c])
}

// ValidSCTID reports whether s is a well-formed SNOMED CT identifier: 6 to 18
// digits, no leading zero, a valid partition identifier and a correct
// Verhoeff check digit.
func ValidSCTID(s string) bool {
	if len(s) < 6 || len(s) > 18 || s[0] == '0' || !VerhoeffValid(s) {
		return false
	}
	// The partition identifier is the second and third digits from the right.
	switch s[len(s)-3 : len(s)-1] {
	case "00", "01", "02", "10", "11", "12":
		return true
	}
	return false
}
