package ukcore

import "strings"

// Code systems of the R4 status codes the invariants test.
const (
	systemAllergyVerification   = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
	systemConditionVerification = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	systemConditionClinical     = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	systemConditionCategory     = "http://terminology.hl7.org/CodeSystem/condition-category"
)

// invariants evaluates the R4 invariants (FHIRPath constraints in the core
// StructureDefinitions) that matter for a GP record and that the
// structural validator, which has no FHIRPath engine, does not check.
func (w *walker) invariants(m map[string]any) {
	switch w.res.typ {
	case "AllergyIntolerance":
		w.allergyStatus(m)
	case "Condition":
		w.conditionStatus(m)
	case "Observation":
		if present(m, "dataAbsentReason") && hasChoice(m, "value") {
			w.add(SeverityError, "invariant", RuleObs6, "dataAbsentReason",
				"obs-6: dataAbsentReason must only be present when there is no value")
		}
	case "Patient":
		contacts, _ := m["contact"].([]any)
		for i, c := range contacts {
			o, _ := c.(map[string]any)
			if !present(o, "name") && !present(o, "telecom") && !present(o, "address") && !present(o, "organization") {
				w.add(SeverityError, "invariant", RulePat1, indexed("contact", i),
					"pat-1: a contact must have a name, telecom, address or organization")
			}
		}
	}
}

// allergyStatus evaluates ait-1 and ait-2.
func (w *walker) allergyStatus(m map[string]any) {
	inError := hasCoding(m["verificationStatus"], systemAllergyVerification, "entered-in-error")
	switch clinical := present(m, "clinicalStatus"); {
	case !inError && !clinical:
		w.add(SeverityError, "invariant", RuleAIT1, "clinicalStatus",
			"ait-1: clinicalStatus must be present unless the record was entered in error")
	case inError && clinical:
		w.add(SeverityError, "invariant", RuleAIT2, "clinicalStatus",
			"ait-2: clinicalStatus must be absent when the record was entered in error")
	}
}

// conditionStatus evaluates con-3, con-4 and con-5.
func (w *walker) conditionStatus(m map[string]any) {
	inError := hasCoding(m["verificationStatus"], systemConditionVerification, "entered-in-error")
	clinical := present(m, "clinicalStatus")
	if inError && clinical {
		w.add(SeverityError, "invariant", RuleCon5, "clinicalStatus",
			"con-5: clinicalStatus must be absent when the record was entered in error")
	}
	if !inError && !clinical {
		cats, _ := m["category"].([]any)
		for _, c := range cats {
			if hasCoding(c, systemConditionCategory, "problem-list-item") {
				w.add(SeverityWarning, "invariant", RuleCon3, "clinicalStatus",
					"con-3: a problem-list condition should have a clinicalStatus")
				break
			}
		}
	}
	// R4 con-4 does not exempt records entered in error, which con-5 forbids
	// to carry a clinicalStatus; they are left to con-5.
	if hasChoice(m, "abatement") && !inError &&
		!hasCoding(m["clinicalStatus"], systemConditionClinical, "inactive", "resolved", "remission") {
		w.add(SeverityError, "invariant", RuleCon4, "clinicalStatus",
			"con-4: an abated condition must be inactive, resolved or in remission")
	}
}

// hasCoding reports whether cc, a CodeableConcept, has a coding with the
// system and one of the codes.
func hasCoding(cc any, system string, codes ...string) bool {
	o, _ := cc.(map[string]any)
	list, _ := o["coding"].([]any)
	for _, c := range list {
		coding, _ := c.(map[string]any)
		if coding["system"] != system {
			continue
		}
		code, _ := coding["code"].(string)
		for _, want := range codes {
			if code == want {
				return true
			}
		}
	}
	return false
}

// hasChoice reports whether m has a value for the choice element name[x],
// such as valueQuantity for "value".
func hasChoice(m map[string]any, name string) bool {
	for k := range m {
		if len(k) > len(name) && strings.HasPrefix(k, name) && k[len(name)] >= 'A' && k[len(name)] <= 'Z' && present(m, k) {
			return true
		}
	}
	return false
}
