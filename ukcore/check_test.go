package ukcore

import "testing"

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
