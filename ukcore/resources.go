package ukcore

// resource applies the rules that concern a whole resource of type
// w.res.typ: UK Core required elements, medication coding, practice
// membership, R4 invariants and dates.
func (w *walker) resource(m map[string]any) {
	switch w.res.typ {
	case "Patient":
		w.patient(m)
	case "Organization":
		if !present(m, "name") && !present(m, "identifier") {
			w.add(SeverityError, "invariant", RuleOrg1, "",
				"org-1: an Organization must have a name or an identifier")
		}
	case "Observation", "DiagnosticReport", "Encounter", "DocumentReference", "Composition":
		if !present(m, "subject") {
			w.add(SeverityWarning, "required", RuleSubjectMissing, "",
				"clinical record does not reference a patient (subject), so it cannot be filed in a patient record")
		}
	case "MedicationRequest", "MedicationStatement", "MedicationAdministration", "MedicationDispense":
		w.medicationCoding(m, "medicationCodeableConcept")
	case "Medication":
		w.medicationCoding(m, "code")
	}
	w.invariants(m)
	w.dates(m)
}

// patient applies the Patient rules.
func (w *walker) patient(m map[string]any) {
	ids, _ := m["identifier"].([]any)
	if len(ids) == 0 && !present(m, "name") {
		w.add(SeverityError, "required", RuleRequired, "",
			"Patient must have an identifier or a name")
	}
	nhs := false
	for _, id := range ids {
		if o, ok := id.(map[string]any); ok && o["system"] == SystemNHSNumber && present(o, "value") {
			nhs = true
			break
		}
	}
	if !nhs {
		w.add(SeverityWarning, "required", RuleNHSNumberMissing, "identifier",
			"Patient has no NHS number identifier (https://fhir.nhs.uk/Id/nhs-number)")
	}
	if w.v.practice != "" {
		w.practiceMembership(m)
	}
}

// practiceMembership warns when every generalPractitioner identified by an
// ODS organisation code names another practice. A patient whose general
// practitioners carry no ODS code cannot be judged and is not reported.
func (w *walker) practiceMembership(m map[string]any) {
	gps, _ := m["generalPractitioner"].([]any)
	first := -1
	for i, gp := range gps {
		ref, _ := gp.(map[string]any)
		id, _ := ref["identifier"].(map[string]any)
		if id == nil || id["system"] != SystemODSOrg {
			continue
		}
		if id["value"] == w.v.practice {
			return
		}
		if first < 0 {
			first = i
		}
	}
	if first >= 0 {
		w.add(SeverityWarning, "business-rule", RulePatientNotInPractice,
			indexed("generalPractitioner", first)+".identifier.value",
			"Patient is registered with a different practice from the one being migrated")
	}
}

// medicationCoding warns when the CodeableConcept m[key] exists but has no
// dm+d coding: UK Core binds medication codes to dm+d.
func (w *walker) medicationCoding(m map[string]any, key string) {
	cc, ok := m[key].(map[string]any)
	if !ok {
		return
	}
	codings, _ := cc["coding"].([]any)
	for _, c := range codings {
		if o, ok := c.(map[string]any); ok && o["system"] == SystemDMD {
			return
		}
	}
	w.add(SeverityWarning, "code-invalid", RuleDMDSystem, key,
		"medication is not coded with dm+d (https://dmd.nhs.uk)")
}

// present reports whether m has the element key with a value: a non-empty
// string, array or object, or any number or boolean.
func present(m map[string]any, key string) bool {
	switch v := m[key].(type) {
	case nil:
		return false
	case string:
		return v != ""
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	default:
		return true
	}
}
