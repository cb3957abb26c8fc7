package ukcore

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResult_OperationOutcome(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		r := Result{Findings: []Finding{
			{Severity: SeverityError, Code: "value", Rule: RuleNHSNumberCheckDigit,
				Expression: "Patient.identifier[0].value", Message: "NHS number check digit is wrong"},
			{Severity: SeverityWarning, Code: "required", Rule: RuleSubjectMissing, Message: "no subject"},
		}}
		var got map[string]any
		if err := json.Unmarshal(r.OperationOutcome("Patient", "p1"), &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"resourceType": "OperationOutcome",
			"extension": []any{map[string]any{
				"url":            ExtensionValidatedResource,
				"valueReference": map[string]any{"reference": "Patient/p1"},
			}},
			"issue": []any{
				map[string]any{"severity": "error", "code": "value",
					"diagnostics": "nhs-number-check-digit: NHS number check digit is wrong",
					"expression":  []any{"Patient.identifier[0].value"}},
				map[string]any{"severity": "warning", "code": "required",
					"diagnostics": "subject-missing: no subject"},
			},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("OperationOutcome (-want +got):\n%s", diff)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		got := string(Result{}.OperationOutcome("", ""))
		want := `{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational","diagnostics":"all OK"}]}`
		if got != want {
			t.Errorf("got %s\nwant %s", got, want)
		}
	})
	// The outcome is itself valid FHIR R4.
	t.Run("ValidR4", func(t *testing.T) {
		v := MustValidator(t, Options{Now: fixedNow})
		bad := v.Validate([]byte(`{"resourceType":"Patient","id":"p1","birthDate":"1980-13-01"}`))
		for _, oo := range [][]byte{bad.OperationOutcome("Patient", "p1"), Result{}.OperationOutcome("", "")} {
			if r := v.Validate(oo); len(r.Findings) != 0 {
				t.Errorf("%s: %+v", oo, r.Findings)
			}
		}
	})
}

func TestResult_HasErrors(t *testing.T) {
	for _, tt := range []struct {
		sev  Severity
		want bool
	}{{SeverityFatal, true}, {SeverityError, true}, {SeverityWarning, false}, {SeverityInformation, false}} {
		if got := (Result{Findings: []Finding{{Severity: tt.sev}}}).HasErrors(); got != tt.want {
			t.Errorf("HasErrors with %s = %v, want %v", tt.sev, got, tt.want)
		}
	}
	if (Result{}).HasErrors() {
		t.Error("empty Result has errors")
	}
}
