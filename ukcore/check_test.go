package ukcore

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestVerhoeff_Known(t *testing.T) {
	// SNOMED CT concepts that exist: diabetes mellitus type 2, essential
	// hypertension, asthma, clinical finding, body weight.
	for _, id := range []string{"44054006", "59621000", "195967001", "404684003", "27113001", "38341003"} {
		if !ValidSCTID(id) {
			t.Errorf("ValidSCTID(%q) = false, want true", id)
		}
		if got := VerhoeffDigit(id[:len(id)-1]); got != int(id[len(id)-1]-'0') {
			t.Errorf("VerhoeffDigit(%q) = %d, want %c", id[:len(id)-1], got, id[len(id)-1])
		}
	}
	for _, id := range []string{"44054007", "", "abc", "0123456", "12345"} {
		if ValidSCTID(id) {
			t.Errorf("ValidSCTID(%q) = true, want false", id)
		}
	}
}

// nhsVectors is ../shared/data/nhs-number-vectors.json.
type nhsVectors struct {
	Valid      []string `json:"valid"`
	Invalid    []string `json:"invalid"`
	CheckDigit []struct {
		Digits string `json:"digits"`
		Check  int    `json:"check"`
	} `json:"check_digit_of_first_nine"`
	Formatted []string `json:"formatted_inputs_that_normalise_to_9876543210"`
}

func TestValidNHSNumber(t *testing.T) {
	t.Run("Vectors", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(sharedData, "nhs-number-vectors.json"))
		if os.IsNotExist(err) {
			t.Skip("shared data absent: ../shared/data/nhs-number-vectors.json not found")
		}
		if err != nil {
			t.Fatal(err)
		}
		var vec nhsVectors
		if err := json.Unmarshal(b, &vec); err != nil {
			t.Fatal(err)
		}
		if len(vec.Valid) == 0 || len(vec.Invalid) == 0 || len(vec.CheckDigit) == 0 || len(vec.Formatted) == 0 {
			t.Fatalf("vectors file has empty sections: %+v", vec)
		}
		for _, s := range vec.Valid {
			if !ValidNHSNumber(s) {
				t.Errorf("ValidNHSNumber(%q) = false, want true", s)
			}
		}
		for _, s := range vec.Invalid {
			if ValidNHSNumber(s) {
				t.Errorf("ValidNHSNumber(%q) = true, want false", s)
			}
		}
		for _, c := range vec.CheckDigit {
			if got := NHSCheckDigit(c.Digits); got != c.Check {
				t.Errorf("NHSCheckDigit(%q) = %d, want %d", c.Digits, got, c.Check)
			}
		}
		for _, s := range vec.Formatted {
			if got := NormaliseNHSNumber(s); got != "9876543210" || !ValidNHSNumber(got) {
				t.Errorf("NormaliseNHSNumber(%q) = %q, want valid 9876543210", s, got)
			}
		}
	})
	t.Run("Own", func(t *testing.T) {
		for _, tt := range []struct {
			in   string
			want bool
		}{
			{"9990000018", true}, {"4000000632", true},
			{"9990000019", false}, // wrong check digit
			{"0000000060", false}, // check digit would be 10
			{"999000001", false}, {"99900000181", false}, {"", false},
			{"99900000１8", false}, // a non-ASCII digit
			{"999000001\x00", false}, {"abcdefghij", false}, {"-999000001", false},
		} {
			if got := ValidNHSNumber(tt.in); got != tt.want {
				t.Errorf("ValidNHSNumber(%q) = %v, want %v", tt.in, got, tt.want)
			}
		}
		for _, tt := range []struct{ in, want string }{
			{"999 000 0018", "9990000018"}, {"999-000-0018", "9990000018"},
			{"\t9990000018 ", "9990000018"}, {"999 000 001", "999000001"},
		} {
			if got := NormaliseNHSNumber(tt.in); got != tt.want {
				t.Errorf("NormaliseNHSNumber(%q) = %q, want %q", tt.in, got, tt.want)
			}
		}
		for _, tt := range []struct {
			in   string
			want int
		}{{"999000001", 8}, {"12345678", -1}, {"12345678x", -1}} {
			if got := NHSCheckDigit(tt.in); got != tt.want {
				t.Errorf("NHSCheckDigit(%q) = %d, want %d", tt.in, got, tt.want)
			}
		}
	})
}

// TestVerhoeff_Property checks that appending VerhoeffDigit always gives a
// valid string, and that every single-digit error and every adjacent
// transposition is detected (the properties Verhoeff guarantees).
func TestVerhoeff_Property(t *testing.T) {
	for n := 0; n < 20000; n++ {
		s := strconv.Itoa(n*7919 + 100000)
		full := s + strconv.Itoa(VerhoeffDigit(s))
		if !VerhoeffValid(full) {
			t.Fatalf("VerhoeffValid(%q) = false", full)
		}
		b := []byte(full)
		for i := range b {
			orig := b[i]
			b[i] = '0' + (orig-'0'+1)%10
			if VerhoeffValid(string(b)) {
				t.Fatalf("single-digit error %q in %q undetected", b, full)
			}
			b[i] = orig
			if i+1 < len(b) && b[i] != b[i+1] {
				b[i], b[i+1] = b[i+1], b[i]
				if VerhoeffValid(string(b)) {
					t.Fatalf("transposition %q of %q undetected", b, full)
				}
				b[i], b[i+1] = b[i+1], b[i]
			}
		}
	}
	for _, s := range []string{"", "12a", " 1"} {
		if VerhoeffValid(s) || VerhoeffDigit(s) != -1 {
			t.Errorf("%q accepted", s)
		}
	}
}
