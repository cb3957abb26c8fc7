package ukcore

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Resources that pass every check; the rule tests break one element each.
const (
	goodPatient = `{"resourceType":"Patient","id":"p1",
		"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990000018"}],
		"name":[{"family":"Testpatient","given":["Alex"]}],"birthDate":"1980-02-29",
		"generalPractitioner":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"A81001"}}]}`
	goodObservation = `{"resourceType":"Observation","id":"o1","status":"final",
		"code":{"coding":[{"system":"http://snomed.info/sct","code":"27113001"}]},
		"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2025-06-01T10:00:00Z",
		"valueQuantity":{"value":70.50,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}`
	goodCondition = `{"resourceType":"Condition","id":"c1",
		"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]},
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":"problem-list-item"}]}],
		"code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"}]},
		"subject":{"reference":"Patient/p1"},"recordedDate":"2020-03-04"}`
	goodMedicationRequest = `{"resourceType":"MedicationRequest","id":"m1","status":"active","intent":"order",
		"medicationCodeableConcept":{"coding":[{"system":"https://dmd.nhs.uk","code":"39732311000001104"}]},
		"subject":{"reference":"Patient/p1"},"authoredOn":"2025-06-01",
		"dispenseRequest":{"quantity":{"value":21,"unit":"capsule","system":"http://snomed.info/sct","code":"428641000"},
		"validityPeriod":{"start":"2025-06-01","end":"2027-06-01"}}}`
	goodAllergy = `{"resourceType":"AllergyIntolerance","id":"a1",
		"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},
		"code":{"coding":[{"system":"http://snomed.info/sct","code":"91936005"}]},"patient":{"reference":"Patient/p1"}}`
	goodOrganization = `{"resourceType":"Organization","id":"org1","name":"A practice",
		"identifier":[{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"A81001"}]}`
	goodAppointment = `{"resourceType":"Appointment","id":"ap1","status":"booked","start":"2030-01-01T09:00:00Z",
		"end":"2030-01-01T09:10:00Z","participant":[{"actor":{"reference":"Patient/p1"},"status":"accepted"}]}`
)

// edit applies JSON Merge Patch (RFC 7386) patch to the resource doc, so a
// bad case reads as the one change it makes to a good resource.
func edit(t *testing.T, doc, patch string) string {
	t.Helper()
	var d, p map[string]any
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatalf("doc: %v", err)
	}
	if err := json.Unmarshal([]byte(patch), &p); err != nil {
		t.Fatalf("patch: %v", err)
	}
	b, err := json.Marshal(mergePatch(d, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mergePatch(doc, patch map[string]any) map[string]any {
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(doc, k)
		case map[string]any:
			dv, _ := doc[k].(map[string]any)
			if dv == nil {
				dv = map[string]any{}
			}
			doc[k] = mergePatch(dv, pv)
		default:
			doc[k] = v
		}
	}
	return doc
}

// want is the part of a Finding a rule test pins down; messages are free.
type want struct {
	Severity   Severity
	Rule       string
	Expression string
}

func got(r Result) []want {
	var out []want
	for _, f := range r.Findings {
		out = append(out, want{f.Severity, f.Rule, f.Expression})
	}
	return out
}

func TestValidator_Validate(t *testing.T) {
	known := map[string]bool{"Patient/p1": true, "Organization/org1": true}
	resolve := func(ref string) bool { return known[ref] }

	tests := []struct {
		name string
		opts Options
		good string // passes every check
		bad  string // breaks exactly the rule under test
		want []want
	}{
		{name: RuleStructure, good: goodPatient,
			bad:  edit(t, goodPatient, `{"birthDate":"1980-02-30x"}`),
			want: []want{{SeverityError, RuleStructure, "Patient.birthDate"}}},
		{name: RuleStructure + "/unknown-element", good: goodPatient,
			bad:  edit(t, goodPatient, `{"colour":"blue"}`),
			want: []want{{SeverityError, RuleStructure, "Patient.colour"}}},
		{name: RuleStructure + "/required", good: goodObservation,
			bad:  edit(t, goodObservation, `{"status":null}`),
			want: []want{{SeverityError, RuleStructure, "Observation"}}},
		{name: RuleStructure + "/fatal", good: goodPatient, bad: `{"resourceType":"Patient",`,
			want: []want{{SeverityFatal, RuleStructure, ""}}},
		{name: RuleStructure + "/too-deep", good: goodPatient,
			bad:  `{"resourceType":"Patient","extension":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`,
			want: []want{{SeverityFatal, RuleStructure, ""}}},
		{name: RuleInternal, good: goodOrganization,
			opts: Options{Resolve: func(string) bool { panic("store down") }},
			bad:  goodCondition,
			want: []want{{SeverityFatal, RuleInternal, ""}}},
		{name: RuleNHSNumberFormat, good: goodPatient,
			bad:  edit(t, goodPatient, `{"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"999 000 0018"}]}`),
			want: []want{{SeverityError, RuleNHSNumberFormat, "Patient.identifier[0].value"}}},
		{name: RuleNHSNumberCheckDigit, good: goodPatient,
			bad:  edit(t, goodPatient, `{"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990000019"}]}`),
			want: []want{{SeverityError, RuleNHSNumberCheckDigit, "Patient.identifier[0].value"}}},
		{name: RuleNHSNumberCheckDigit + "/in-reference", good: goodCondition,
			bad:  edit(t, goodCondition, `{"subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"1234567890"}}}`),
			want: []want{{SeverityError, RuleNHSNumberCheckDigit, "Condition.subject.identifier.value"}}},
		{name: RuleNHSNumberMissing, good: goodPatient,
			bad:  edit(t, goodPatient, `{"identifier":[{"system":"https://example.org/mrn","value":"X1"}]}`),
			want: []want{{SeverityWarning, RuleNHSNumberMissing, "Patient.identifier"}}},
		{name: RuleRequired, good: goodPatient,
			bad: edit(t, goodPatient, `{"identifier":null,"name":null}`),
			want: []want{
				{SeverityError, RuleRequired, "Patient"},
				{SeverityWarning, RuleNHSNumberMissing, "Patient.identifier"},
			}},
		{name: RuleODSCodeFormat, good: goodOrganization,
			bad:  edit(t, goodOrganization, `{"identifier":[{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"a81-001"}]}`),
			want: []want{{SeverityError, RuleODSCodeFormat, "Organization.identifier[0].value"}}},
		{name: RuleSCTID, good: goodCondition,
			bad:  edit(t, goodCondition, `{"code":{"coding":[{"system":"http://snomed.info/sct","code":"44054007"}]}}`),
			want: []want{{SeverityError, RuleSCTID, "Condition.code.coding[0].code"}}},
		{name: RuleSCTID + "/description-id", good: goodCondition,
			// 1234011: Verhoeff-valid, partition 01 (a description id).
			bad:  edit(t, goodCondition, `{"code":{"coding":[{"system":"http://snomed.info/sct","code":"1234011"}]}}`),
			want: []want{{SeverityError, RuleSCTID, "Condition.code.coding[0].code"}}},
		{name: RuleSCTExpression, good: goodCondition,
			bad:  edit(t, goodCondition, `{"code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006 : 363698007 = 113257007"}]}}`),
			want: []want{{SeverityWarning, RuleSCTExpression, "Condition.code.coding[0].code"}}},
		{name: RuleDMDCode, good: goodMedicationRequest,
			bad:  edit(t, goodMedicationRequest, `{"medicationCodeableConcept":{"coding":[{"system":"https://dmd.nhs.uk","code":"39732311000001105"}]}}`),
			want: []want{{SeverityError, RuleDMDCode, "MedicationRequest.medicationCodeableConcept.coding[0].code"}}},
		{name: RuleDMDSystem, good: goodMedicationRequest,
			bad:  edit(t, goodMedicationRequest, `{"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"308182"}]}}`),
			want: []want{{SeverityWarning, RuleDMDSystem, "MedicationRequest.medicationCodeableConcept"}}},
		{name: RuleUCUMSystem, good: goodObservation,
			bad:  edit(t, goodObservation, `{"valueQuantity":{"system":"http://example.org/units"}}`),
			want: []want{{SeverityWarning, RuleUCUMSystem, "Observation.valueQuantity.system"}}},
		{name: RuleUCUMSystem + "/no-system", good: goodObservation,
			bad:  edit(t, goodObservation, `{"valueQuantity":{"system":null}}`),
			want: []want{{SeverityWarning, RuleUCUMSystem, "Observation.valueQuantity.system"}}},
		{name: RuleSubjectMissing, good: goodObservation,
			bad:  edit(t, goodObservation, `{"subject":null}`),
			want: []want{{SeverityWarning, RuleSubjectMissing, "Observation"}}},
		{name: RuleDateInFuture, good: goodPatient,
			bad:  edit(t, goodPatient, `{"birthDate":"2026-01-03"}`),
			want: []want{{SeverityError, RuleDateInFuture, "Patient.birthDate"}}},
		{name: RuleDateInFuture + "/effective", good: goodObservation,
			bad:  edit(t, goodObservation, `{"effectiveDateTime":"2026-01-01T12:30:00Z"}`),
			want: []want{{SeverityError, RuleDateInFuture, "Observation.effectiveDateTime"}}},
		{name: RuleDateInFuture + "/array", good: goodAllergy,
			bad:  edit(t, goodAllergy, `{"reaction":[{"manifestation":[{"text":"rash"}],"onset":"2027"}]}`),
			want: []want{{SeverityError, RuleDateInFuture, "AllergyIntolerance.reaction[0].onset"}}},
		{name: RuleDateInFuture + "/finished-encounter",
			good: `{"resourceType":"Encounter","id":"e1","status":"planned","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/p1"},"period":{"start":"2026-02-01T09:00:00Z"}}`,
			bad:  `{"resourceType":"Encounter","id":"e1","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/p1"},"period":{"start":"2026-02-01T09:00:00Z"}}`,
			want: []want{{SeverityError, RuleDateInFuture, "Encounter.period.start"}}},
		{name: RuleReferenceUnresolved, opts: Options{Resolve: resolve}, good: goodCondition,
			bad:  edit(t, goodCondition, `{"subject":{"reference":"Patient/p2"}}`),
			want: []want{{SeverityError, RuleReferenceUnresolved, "Condition.subject.reference"}}},
		{name: RuleReferenceUnresolved + "/versioned", opts: Options{Resolve: resolve}, good: goodCondition,
			bad:  edit(t, goodCondition, `{"subject":{"reference":"Patient/p2/_history/3"}}`),
			want: []want{{SeverityError, RuleReferenceUnresolved, "Condition.subject.reference"}}},
		{name: RulePatientNotInPractice, opts: Options{PracticeODS: "A81001"}, good: goodPatient,
			bad:  edit(t, goodPatient, `{"generalPractitioner":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"B82002"}}]}`),
			want: []want{{SeverityWarning, RulePatientNotInPractice, "Patient.generalPractitioner[0].identifier.value"}}},
		{name: RuleRef1, good: goodMedicationRequest,
			bad:  edit(t, goodMedicationRequest, `{"medicationCodeableConcept":null,"medicationReference":{"reference":"#med1"}}`),
			want: []want{{SeverityError, RuleRef1, "MedicationRequest.medicationReference.reference"}}},
		{name: RuleAIT1, good: goodAllergy,
			bad:  edit(t, goodAllergy, `{"clinicalStatus":null}`),
			want: []want{{SeverityError, RuleAIT1, "AllergyIntolerance.clinicalStatus"}}},
		{name: RuleAIT2, good: goodAllergy,
			bad:  edit(t, goodAllergy, `{"verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-verification","code":"entered-in-error"}]}}`),
			want: []want{{SeverityError, RuleAIT2, "AllergyIntolerance.clinicalStatus"}}},
		{name: RuleCon3, good: goodCondition,
			bad:  edit(t, goodCondition, `{"clinicalStatus":null}`),
			want: []want{{SeverityWarning, RuleCon3, "Condition.clinicalStatus"}}},
		{name: RuleCon4, good: goodCondition,
			bad:  edit(t, goodCondition, `{"abatementDateTime":"2021-01-01"}`),
			want: []want{{SeverityError, RuleCon4, "Condition.clinicalStatus"}}},
		{name: RuleCon5, good: goodCondition,
			bad:  edit(t, goodCondition, `{"verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"entered-in-error"}]}}`),
			want: []want{{SeverityError, RuleCon5, "Condition.clinicalStatus"}}},
		{name: RuleObs6, good: goodObservation,
			bad:  edit(t, goodObservation, `{"dataAbsentReason":{"text":"not asked"}}`),
			want: []want{{SeverityError, RuleObs6, "Observation.dataAbsentReason"}}},
		{name: RuleOrg1, good: goodOrganization,
			bad:  edit(t, goodOrganization, `{"identifier":null,"name":null}`),
			want: []want{{SeverityError, RuleOrg1, "Organization"}}},
		{name: RulePat1, good: goodPatient,
			bad:  edit(t, goodPatient, `{"contact":[{"gender":"female"}]}`),
			want: []want{{SeverityError, RulePat1, "Patient.contact[0]"}}},
	}
	for _, tt := range tests {
		opts := tt.opts
		opts.Now = fixedNow
		v := MustValidator(t, opts)
		t.Run(tt.name+"/OK", func(t *testing.T) {
			if r := v.Validate([]byte(tt.good)); len(r.Findings) != 0 || r.HasErrors() {
				t.Errorf("good resource: findings %+v", r.Findings)
			}
		})
		t.Run(tt.name+"/Err", func(t *testing.T) {
			r := v.Validate([]byte(tt.bad))
			if diff := cmp.Diff(tt.want, got(r)); diff != "" {
				t.Errorf("findings mismatch (-want +got):\n%s\nall: %+v", diff, r.Findings)
			}
			wantErr := false
			for _, w := range tt.want {
				wantErr = wantErr || w.Severity == SeverityError || w.Severity == SeverityFatal
			}
			if r.HasErrors() != wantErr {
				t.Errorf("HasErrors() = %v, want %v", r.HasErrors(), wantErr)
			}
		})
	}

	// Elements that may hold future dates in a GP record are not flagged.
	t.Run("FutureDatesAllowed", func(t *testing.T) {
		v := MustValidator(t, Options{Now: fixedNow})
		for _, doc := range []string{
			goodAppointment,
			goodMedicationRequest, // validityPeriod ends in 2027
			`{"resourceType":"Slot","id":"s1","schedule":{"reference":"Schedule/1"},"status":"free","start":"2030-01-01T09:00:00Z","end":"2030-01-01T09:10:00Z"}`,
			`{"resourceType":"Immunization","id":"i1","status":"completed","vaccineCode":{"coding":[{"system":"https://dmd.nhs.uk","code":"39114911000001105"}]},"patient":{"reference":"Patient/p1"},"occurrenceDateTime":"2025-10-01","expirationDate":"2027-01-01"}`,
			edit(t, goodPatient, `{"birthDate":"2026-01-01"}`),                       // today
			edit(t, goodObservation, `{"effectiveDateTime":"2026-01-01T12:04:00Z"}`), // within clock skew
			edit(t, goodObservation, `{"effectiveDateTime":"2026-01-02T01:00:00+14:00"}`),
		} {
			if r := v.Validate([]byte(doc)); len(r.Findings) != 0 {
				t.Errorf("%.60s...: findings %+v", doc, r.Findings)
			}
		}
	})

	t.Run("ReferencesNotResolved", func(t *testing.T) {
		v := MustValidator(t, Options{Now: fixedNow, Resolve: func(string) bool { return false }})
		for _, ref := range []string{"urn:uuid:3c8e2a9e-1d0f-4c0f-9c1e-1a2b3c4d5e6f", "https://example.org/fhir/Patient/9",
			"Patient?identifier=x", "#"} {
			doc := edit(t, goodCondition, `{"subject":{"reference":"`+ref+`"}}`)
			for _, f := range v.Validate([]byte(doc)).Findings {
				if f.Rule == RuleReferenceUnresolved || f.Rule == RuleRef1 {
					t.Errorf("reference %q: %+v", ref, f)
				}
			}
		}
		bundle := `{"resourceType":"Bundle","id":"b1","type":"collection","entry":[
			{"fullUrl":"https://example.org/fhir/Patient/p9","resource":{"resourceType":"Patient","id":"p9","name":[{"family":"X"}],"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990000026"}]}},
			{"fullUrl":"https://example.org/fhir/Condition/c9","resource":` + edit(t, goodCondition, `{"id":"c9","subject":{"reference":"Patient/p9"}}`) + `}]}`
		if r := v.Validate([]byte(bundle)); len(r.Findings) != 0 {
			t.Errorf("bundle-local reference: findings %+v", r.Findings)
		}
	})

	t.Run("NestedResources", func(t *testing.T) {
		v := MustValidator(t, Options{Now: fixedNow})
		bundle := `{"resourceType":"Bundle","id":"b1","type":"collection","entry":[{"resource":` +
			edit(t, goodPatient, `{"birthDate":"2030-01-01"}`) + `}]}`
		wantBundle := []want{{SeverityError, RuleDateInFuture, "Bundle.entry[0].resource.birthDate"}}
		if diff := cmp.Diff(wantBundle, got(v.Validate([]byte(bundle)))); diff != "" {
			t.Errorf("bundle entry (-want +got):\n%s", diff)
		}
		contained := edit(t, goodMedicationRequest, `{"medicationCodeableConcept":null,"medicationReference":{"reference":"#med1"},
			"contained":[{"resourceType":"Medication","id":"med1","code":{"coding":[{"system":"http://snomed.info/sct","code":"39732311000001104"}]}}]}`)
		wantContained := []want{{SeverityWarning, RuleDMDSystem, "MedicationRequest.contained[0].code"}}
		if diff := cmp.Diff(wantContained, got(v.Validate([]byte(contained)))); diff != "" {
			t.Errorf("contained (-want +got):\n%s", diff)
		}
	})

	t.Run("NoPatientDataInFindings", func(t *testing.T) {
		v := MustValidator(t, Options{Now: fixedNow, PracticeODS: "A81001", Resolve: func(string) bool { return false }})
		doc := `{"resourceType":"Patient","id":"p1","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"4000000633"},
			{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"400 000 0632"}],"name":[{"family":"Zebedee"}],
			"birthDate":"2031-07-14","gender":"Zebedee","link":[{"other":{"reference":"Patient/Zebedee"},"type":"seealso"}],
			"generalPractitioner":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"Y99999"}}],
			"Zebedee":{"system":"http://snomed.info/sct","code":"1"},"zebedee":{"Zebedee":{"system":"http://snomed.info/sct","code":"1"}},
			"contained":[{"resourceType":"Zebedee","id":"z"}]}`
		r := v.Validate([]byte(doc))
		if len(r.Findings) < 8 {
			t.Fatalf("want findings from several rules, got %+v", r.Findings)
		}
		out := string(r.OperationOutcome("Patient", "p1"))
		for _, f := range r.Findings {
			out += f.Message + f.Expression
		}
		for _, secret := range []string{"4000000633", "400 000 0632", "0632", "Zebedee", "2031", "07-14", "Y99999"} {
			if strings.Contains(out, secret) {
				t.Errorf("patient data %q leaked into findings: %s", secret, out)
			}
		}
	})

	t.Run("UKCoreExamples", testUKCoreExamples)
	t.Run("Synthea", testSynthea)

	t.Run("Concurrent", func(t *testing.T) {
		v := MustValidator(t, Options{Now: fixedNow})
		docs := []string{goodPatient, goodObservation, goodCondition, goodMedicationRequest,
			edit(t, goodPatient, `{"birthDate":"1980-02-30x"}`)}
		results := make([]Result, len(docs))
		for i, d := range docs {
			results[i] = v.Validate([]byte(d))
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					k := (g + i) % len(docs)
					if diff := cmp.Diff(results[k], v.Validate([]byte(docs[k])), cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("concurrent result differs:\n%s", diff)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

func TestNewValidator(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		v := MustValidator(t, Options{})
		if r := v.Validate([]byte(goodPatient)); len(r.Findings) != 0 {
			t.Errorf("zero Options: findings %+v", r.Findings)
		}
	})
	t.Run("ErrPracticeODS", func(t *testing.T) {
		if _, err := NewValidator(Options{PracticeODS: "a81001"}); err == nil {
			t.Error("malformed PracticeODS accepted")
		}
	})
}
