package ukcore

import (
	"encoding/json"
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzValidate checks that Validate never panics (not even inside the
// third-party structural validator, which Validate would report as
// validator-internal), and that its results are well formed whatever the
// input. Seeds: testdata/fuzz/FuzzValidate plus the resources below.
// Run: go test ./ukcore/ -run '^$' -fuzz FuzzValidate -fuzztime 60s
func FuzzValidate(f *testing.F) {
	for _, s := range []string{goodPatient, goodObservation, goodCondition, goodMedicationRequest,
		goodAllergy, goodOrganization, goodAppointment} {
		f.Add([]byte(s))
	}
	v, err := NewValidator(Options{
		Now:         fixedNow,
		Resolve:     func(ref string) bool { return len(ref)%2 == 0 },
		PracticeODS: "A81001",
	})
	if err != nil {
		f.Fatal(err)
	}
	severities := []Severity{SeverityFatal, SeverityError, SeverityWarning, SeverityInformation}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := v.Validate(data)
		for i, fd := range r.Findings {
			if fd.Rule == RuleInternal {
				t.Fatalf("validator panicked on input")
			}
			if !slices.Contains(allRules, fd.Rule) || fd.Code == "" || fd.Message == "" ||
				!slices.Contains(severities, fd.Severity) {
				t.Fatalf("malformed finding %d: %+v", i, fd)
			}
			if !utf8.ValidString(fd.Expression) || !utf8.ValidString(fd.Message) {
				t.Fatalf("finding %d is not valid UTF-8: %+v", i, fd)
			}
		}
		var oo struct {
			ResourceType string `json:"resourceType"`
			Issue        []any  `json:"issue"`
		}
		if err := json.Unmarshal(r.OperationOutcome("Patient", "p1"), &oo); err != nil ||
			oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
			t.Fatalf("OperationOutcome unusable: %v", err)
		}
	})
}
