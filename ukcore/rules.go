package ukcore

import (
	"encoding/json"
	"strings"
)

// Rule identifiers, stable across releases: the target counts quarantined
// resources by rule, and docs/VALIDATION.md describes each one.
const (
	// RuleStructure: the resource is not valid FHIR R4 (error), or not a
	// resource at all (fatal).
	RuleStructure = "r4-structure"
	// RuleInternal: the validator itself failed on the input (fatal).
	RuleInternal = "validator-internal"

	// RuleNHSNumberFormat: an NHS number is not exactly ten digits (error).
	RuleNHSNumberFormat = "nhs-number-format"
	// RuleNHSNumberCheckDigit: an NHS number's modulus-11 check digit is
	// wrong (error).
	RuleNHSNumberCheckDigit = "nhs-number-check-digit"
	// RuleNHSNumberMissing: a Patient has no NHS number (warning).
	RuleNHSNumberMissing = "ukcore-nhs-number-missing"
	// RuleODSCodeFormat: an ODS organisation or site code is malformed (error).
	RuleODSCodeFormat = "ods-code-format"
	// RuleSCTID: a SNOMED CT code is not a well-formed concept id (error).
	RuleSCTID = "sctid-verhoeff"
	// RuleSCTExpression: a SNOMED CT code is a postcoordinated expression,
	// which is not checked (warning).
	RuleSCTExpression = "sctid-expression"
	// RuleDMDCode: a dm+d code is not a well-formed dm+d id (error).
	RuleDMDCode = "dmd-verhoeff"
	// RuleDMDSystem: a medication is not coded with dm+d (warning).
	RuleDMDSystem = "dmd-system"
	// RuleUCUMSystem: a coded quantity unit is not UCUM (warning).
	RuleUCUMSystem = "ucum-system"

	// RuleRequired: an element UK Core or the migration needs is absent
	// (error).
	RuleRequired = "ukcore-required"
	// RuleSubjectMissing: a clinical resource names no patient (warning).
	RuleSubjectMissing = "subject-missing"
	// RuleDateInFuture: a date that records something that happened is
	// later than now (error).
	RuleDateInFuture = "date-in-future"
	// RuleReferenceUnresolved: a relative reference names a resource found
	// neither in the input nor by Options.Resolve (error).
	RuleReferenceUnresolved = "reference-unresolved"
	// RulePatientNotInPractice: a Patient is registered with other
	// practices only (warning).
	RulePatientNotInPractice = "patient-not-in-practice"

	// R4 invariants the structural validator does not evaluate (it has no
	// FHIRPath engine); each is named after its FHIR constraint key.

	// RuleRef1 (ref-1): a "#id" reference must name a contained resource (error).
	RuleRef1 = "r4-ref-1"
	// RuleAIT1 (ait-1): AllergyIntolerance.clinicalStatus must be present
	// unless entered in error (error).
	RuleAIT1 = "r4-ait-1"
	// RuleAIT2 (ait-2): AllergyIntolerance.clinicalStatus must be absent
	// when entered in error (error).
	RuleAIT2 = "r4-ait-2"
	// RuleCon3 (con-3): a problem-list Condition should have a clinicalStatus
	// (warning, as in R4).
	RuleCon3 = "r4-con-3"
	// RuleCon4 (con-4): an abated Condition must be inactive, resolved or in
	// remission (error).
	RuleCon4 = "r4-con-4"
	// RuleCon5 (con-5): Condition.clinicalStatus must be absent when entered
	// in error (error).
	RuleCon5 = "r4-con-5"
	// RuleObs6 (obs-6): Observation.dataAbsentReason only without a value (error).
	RuleObs6 = "r4-obs-6"
	// RuleOrg1 (org-1): an Organization needs a name or an identifier (error).
	RuleOrg1 = "r4-org-1"
	// RulePat1 (pat-1): a Patient.contact needs details or an organization (error).
	RulePat1 = "r4-pat-1"
)

// allRules lists every rule id, for tests and documentation checks.
var allRules = []string{
	RuleStructure, RuleInternal,
	RuleNHSNumberFormat, RuleNHSNumberCheckDigit, RuleNHSNumberMissing,
	RuleODSCodeFormat, RuleSCTID, RuleSCTExpression, RuleDMDCode, RuleDMDSystem,
	RuleUCUMSystem, RuleRequired, RuleSubjectMissing, RuleDateInFuture,
	RuleReferenceUnresolved, RulePatientNotInPractice,
	RuleRef1, RuleAIT1, RuleAIT2, RuleCon3, RuleCon4, RuleCon5, RuleObs6, RuleOrg1, RulePat1,
}

// Code and identifier systems UK Core uses.
const (
	// SystemNHSNumber is the Identifier.system of NHS numbers.
	SystemNHSNumber = "https://fhir.nhs.uk/Id/nhs-number"
	// SystemODSOrg is the Identifier.system of ODS organisation codes.
	SystemODSOrg = "https://fhir.nhs.uk/Id/ods-organization-code"
	// SystemODSSite is the Identifier.system of ODS site codes.
	SystemODSSite = "https://fhir.nhs.uk/Id/ods-site-code"
	// SystemSNOMED is the Coding.system of SNOMED CT.
	SystemSNOMED = "http://snomed.info/sct"
	// SystemDMD is the Coding.system of the NHS Dictionary of medicines and
	// devices (dm+d).
	SystemDMD = "https://dmd.nhs.uk"
	// SystemUCUM is the Quantity.system of UCUM units.
	SystemUCUM = "http://unitsofmeasure.org"

	systemISO4217 = "urn:iso:std:iso:4217"
)

// ValidODSCode reports whether s has the form of an ODS organisation or site
// code: 3 to 10 upper-case letters and digits (trusts "RR8", sites "RR813",
// practices "A81001", ICBs "QWO"). It does not check that the code exists.
func ValidODSCode(s string) bool {
	if len(s) < 3 || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// datatype applies the rules for Identifier, Coding, Quantity and Reference
// to obj, recognising each by its shape: FHIR JSON carries no type names,
// and these elements occur under hundreds of names.
func (w *walker) datatype(obj map[string]any) {
	if ref, ok := obj["reference"].(string); ok {
		w.reference(ref)
	}
	system, _ := obj["system"].(string)
	if code, ok := obj["code"].(string); ok {
		if system != "" {
			w.coded(system, code)
		}
		if isQuantity(obj) {
			w.quantityUnit(system)
		}
		return
	}
	if value, ok := obj["value"].(string); ok && system != "" {
		w.identifier(system, value)
	}
}

// isQuantity reports whether obj, which has a code, is a Quantity rather
// than a Coding: only a Quantity has a numeric value, a unit or a comparator.
func isQuantity(obj map[string]any) bool {
	if _, ok := obj["value"].(json.Number); ok {
		return true
	}
	if _, ok := obj["unit"].(string); ok {
		return true
	}
	_, ok := obj["comparator"].(string)
	return ok
}

// identifier checks an Identifier's value against its system.
func (w *walker) identifier(system, value string) {
	switch system {
	case SystemNHSNumber:
		w.nhsNumber(value)
	case SystemODSOrg, SystemODSSite:
		if value != "" && !ValidODSCode(value) {
			w.add(SeverityError, "value", RuleODSCodeFormat, "value",
				"ODS code must be 3 to 10 upper-case letters and digits")
		}
	}
}

// nhsNumber checks an NHS number identifier value.
func (w *walker) nhsNumber(value string) {
	if value == "" {
		return
	}
	if !isDigits(value) || len(value) != 10 {
		msg := "NHS number must be exactly 10 digits"
		if ValidNHSNumber(NormaliseNHSNumber(value)) {
			msg += ", without spaces or hyphens"
		}
		w.add(SeverityError, "value", RuleNHSNumberFormat, "value", msg)
		return
	}
	if !ValidNHSNumber(value) {
		msg := "NHS number check digit is wrong"
		if NHSCheckDigit(value[:9]) == 10 {
			msg = "NHS number is not valid: no check digit exists for its first nine digits"
		}
		w.add(SeverityError, "value", RuleNHSNumberCheckDigit, "value", msg)
	}
}

// coded checks the code of a Coding (or of a coded Quantity unit) against
// its system.
func (w *walker) coded(system, code string) {
	switch system {
	case SystemSNOMED:
		w.snomed(code)
	case SystemDMD:
		if code == "" {
			return
		}
		if len(code) < 6 || len(code) > 18 || !isDigits(code) || code[0] == '0' || !VerhoeffValid(code) {
			w.add(SeverityError, "code-invalid", RuleDMDCode, "code",
				"dm+d code must be a 6 to 18 digit identifier with a valid Verhoeff check digit")
		} else if !conceptPartition(code) {
			w.add(SeverityError, "code-invalid", RuleDMDCode, "code",
				"dm+d code is not a concept identifier (wrong partition)")
		}
	}
}

// snomed checks a SNOMED CT code: a concept id, or an expression which is
// reported but not checked.
func (w *walker) snomed(code string) {
	if code == "" {
		return
	}
	if !isDigits(code) {
		if strings.ContainsAny(code, " :|=+{}()<>^,") {
			w.add(SeverityWarning, "not-supported", RuleSCTExpression, "code",
				"SNOMED CT postcoordinated expression not checked")
			return
		}
		w.add(SeverityError, "code-invalid", RuleSCTID, "code",
			"SNOMED CT code must be a concept id of 6 to 18 digits")
		return
	}
	if !ValidSCTID(code) {
		w.add(SeverityError, "code-invalid", RuleSCTID, "code",
			"SNOMED CT concept id is not valid (length, leading zero, partition or Verhoeff check digit)")
		return
	}
	if !conceptPartition(code) {
		w.add(SeverityError, "code-invalid", RuleSCTID, "code",
			"SNOMED CT code is a description or relationship id, not a concept id")
	}
}

// conceptPartition reports whether the SCTID s (already well formed) is in
// a concept partition: 00 (International) or 10 (extension).
func conceptPartition(s string) bool {
	p := s[len(s)-3 : len(s)-1]
	return p == "00" || p == "10"
}

// quantityUnit checks the system of a Quantity that has a unit code. UK
// Core expects UCUM; medication quantities may use dm+d or SNOMED CT units
// of measure ("tablet"), and money uses ISO 4217.
func (w *walker) quantityUnit(system string) {
	switch system {
	case SystemUCUM, systemISO4217:
		return
	case SystemSNOMED, SystemDMD:
		if medicationResource(w.res.typ) {
			return
		}
	case "":
		w.add(SeverityWarning, "code-invalid", RuleUCUMSystem, "system",
			"quantity has a unit code but no unit system; UK Core expects UCUM")
		return
	}
	w.add(SeverityWarning, "code-invalid", RuleUCUMSystem, "system",
		"quantity unit is not coded in UCUM (http://unitsofmeasure.org)")
}

// medicationResource reports whether typ is a resource whose quantities may
// use dm+d units.
func medicationResource(typ string) bool {
	switch typ {
	case "Medication", "MedicationRequest", "MedicationDispense", "MedicationStatement",
		"MedicationAdministration", "Immunization":
		return true
	}
	return false
}

// isDigits reports whether s is non-empty and all ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
