package fhir

import (
	"slices"
	"strings"
)

// patientCompartment maps each resource type in the FHIR R4 (4.0.1) Patient
// compartment (http://hl7.org/fhir/R4/compartmentdefinition-patient.html)
// to the element paths of its compartment search parameters, in the
// definition's order. A path is dotted element names walked through nested
// objects and arrays down to a Reference. Each search parameter is
// translated to the elements its R4 expression reads (for example
// Encounter's "patient" is Encounter.subject, AuditEvent's "patient" is
// agent.who and entity.what). Types the definition lists without
// parameters (Slot, Binary, Organization, Practitioner, ...) are absent.
//
// Departures from R4, on purpose:
//   - Task is included through Task.for: R4 leaves Task out, but a GP
//     practice's tasks are part of the patient's record (requirement S5),
//     and R5 adds Task to the compartment.
//   - Group (param member) is left out: dtm's Group is the practice list,
//     which spans every patient and belongs to none.
//   - Patient is in its own compartment (Compartment returns its id), not
//     through Patient.link.
var patientCompartment = map[string][]string{
	"Account":                     {"subject"},
	"AdverseEvent":                {"subject"},
	"AllergyIntolerance":          {"patient", "recorder", "asserter"},
	"Appointment":                 {"participant.actor"},
	"AppointmentResponse":         {"actor"},
	"AuditEvent":                  {"agent.who", "entity.what"},
	"Basic":                       {"subject", "author"},
	"BodyStructure":               {"patient"},
	"CarePlan":                    {"subject", "activity.detail.performer"},
	"CareTeam":                    {"subject", "participant.member"},
	"ChargeItem":                  {"subject"},
	"Claim":                       {"patient", "payee.party"},
	"ClaimResponse":               {"patient"},
	"ClinicalImpression":          {"subject"},
	"Communication":               {"subject", "sender", "recipient"},
	"CommunicationRequest":        {"subject", "sender", "recipient", "requester"},
	"Composition":                 {"subject", "author", "attester.party"},
	"Condition":                   {"subject", "asserter"},
	"Consent":                     {"patient"},
	"Coverage":                    {"policyHolder", "subscriber", "beneficiary", "payor"},
	"CoverageEligibilityRequest":  {"patient"},
	"CoverageEligibilityResponse": {"patient"},
	"DetectedIssue":               {"patient"},
	"DeviceRequest":               {"subject", "performer"},
	"DeviceUseStatement":          {"subject"},
	"DiagnosticReport":            {"subject"},
	"DocumentManifest":            {"subject", "author", "recipient"},
	"DocumentReference":           {"subject", "author"},
	"Encounter":                   {"subject"},
	"EnrollmentRequest":           {"candidate"},
	"EpisodeOfCare":               {"patient"},
	"ExplanationOfBenefit":        {"patient", "payee.party"},
	"FamilyMemberHistory":         {"patient"},
	"Flag":                        {"subject"},
	"Goal":                        {"subject"},
	"ImagingStudy":                {"subject"},
	"Immunization":                {"patient"},
	"ImmunizationEvaluation":      {"patient"},
	"ImmunizationRecommendation":  {"patient"},
	"Invoice":                     {"subject", "recipient"},
	"List":                        {"subject", "source"},
	"MeasureReport":               {"subject"},
	"Media":                       {"subject"},
	"MedicationAdministration":    {"subject", "performer.actor"},
	"MedicationDispense":          {"subject", "receiver"},
	"MedicationRequest":           {"subject"},
	"MedicationStatement":         {"subject"},
	"MolecularSequence":           {"patient"},
	"NutritionOrder":              {"patient"},
	"Observation":                 {"subject", "performer"},
	"Person":                      {"link.target"},
	"Procedure":                   {"subject", "performer.actor"},
	"Provenance":                  {"target"},
	"QuestionnaireResponse":       {"subject", "author"},
	"RelatedPerson":               {"patient"},
	"RequestGroup":                {"subject", "action.participant"},
	"ResearchSubject":             {"individual"},
	"RiskAssessment":              {"subject"},
	"Schedule":                    {"actor"},
	"ServiceRequest":              {"subject", "performer"},
	"Specimen":                    {"subject"},
	"SupplyDelivery":              {"patient"},
	"SupplyRequest":               {"deliverTo"},
	"Task":                        {"for"},
	"VisionPrescription":          {"patient"},
}

// compartmentPaths is patientCompartment with each path split at dots.
var compartmentPaths = func() map[string][][]string {
	m := make(map[string][][]string, len(patientCompartment))
	for t, paths := range patientCompartment {
		for _, p := range paths {
			m[t] = append(m[t], strings.Split(p, "."))
		}
	}
	return m
}()

// PatientCompartmentTypes returns, sorted, the resource types that can be
// in a patient's compartment: Patient and every type Compartment looks
// into. The slice is new on each call.
func PatientCompartmentTypes() []string {
	types := []string{"Patient"}
	for t := range patientCompartment {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// Compartment returns the id of the patient whose compartment resource is
// in: for a Patient, its own id; for a type in the compartment, the first
// "Patient/{id}" reference (relative, absolute ".../Patient/{id}", or
// either with "/_history/{v}") found along the type's paths, in order;
// otherwise "". References of other forms (contained "#x", "urn:uuid:",
// conditional "Patient?...") are not resolved. It returns an error,
// matching ErrInvalid, when resource is not a valid JSON object, when a
// "reference" on a compartment path is not a string, or when a Patient
// reference carries an invalid id. resourceType is trusted (it comes from
// ParseHeader). Safe for concurrent use.
func Compartment(resourceType string, resource []byte) (patientID string, err error) {
	if resourceType == "Patient" {
		var id []byte
		err := walkObject(resource, func(key []byte, escaped bool, value []byte) error {
			if keyIs(key, escaped, "id") {
				id = value
			}
			return nil
		})
		if err != nil {
			return "", err
		}
		if id == nil || !isString(id) {
			return "", invalidf("missing id")
		}
		patientID = stringValue(id)
		if err := CheckID(patientID); err != nil {
			return "", err
		}
		return patientID, nil
	}
	paths := compartmentPaths[resourceType]
	// First pass: validate the resource and note the raw value of each
	// path's first element.
	var firstBuf [4][]byte
	first := firstBuf[:0]
	if len(paths) > len(firstBuf) {
		first = make([][]byte, 0, len(paths))
	}
	first = first[:len(paths)]
	err = walkObject(resource, func(key []byte, escaped bool, value []byte) error {
		k := string(key) // no allocation: only compared
		if escaped {
			k = decodeKey(key, true)
		}
		for i, p := range paths {
			if p[0] == k {
				first[i] = value
			}
		}
		return nil
	})
	if err != nil || len(paths) == 0 {
		return "", err
	}
	for i, p := range paths {
		if first[i] == nil {
			continue
		}
		id, err := findPatientRef(first[i], p, 1)
		if err != nil || id != "" {
			return id, err
		}
	}
	return "", nil
}

// findPatientRef looks, in raw (the value of path[:i]), for the first
// Reference at path whose reference is to a Patient.
func findPatientRef(raw []byte, path []string, i int) (id string, err error) {
	err = walkValue(raw, func(key []byte, escaped bool, value []byte) error {
		if id != "" {
			return nil
		}
		k := string(key)
		if escaped {
			k = decodeKey(key, true)
		}
		switch {
		case i < len(path) && k == path[i]:
			found, err := findPatientRef(value, path, i+1)
			if err != nil {
				return err
			}
			id = found
		case i == len(path) && k == "reference":
			if !isString(value) {
				return invalidf("%s.reference is not a string", strings.Join(path, "."))
			}
			found, ok := patientRef(stringValue(value))
			if !ok {
				return invalidf("%s.reference: patient reference with an invalid id", strings.Join(path, "."))
			}
			id = found
		}
		return nil
	})
	return id, err
}

// patientRef returns the id of a literal reference to a Patient, "" when
// ref is not one, and ok false when it is one with an invalid id.
func patientRef(ref string) (id string, ok bool) {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	var rest string
	switch {
	case strings.HasPrefix(ref, "Patient/"):
		rest = ref[len("Patient/"):]
	case strings.Contains(ref, "://"):
		i := strings.LastIndex(ref, "/Patient/")
		if i < 0 {
			return "", true
		}
		rest = ref[i+len("/Patient/"):]
	default:
		return "", true
	}
	if CheckID(rest) != nil {
		return "", false
	}
	return rest, true
}

// PatientActive reports whether a Patient resource is a registered member:
// false only when its "active" element is literally false (a deducted
// patient), true otherwise, including when "active" is absent or the
// resource is not a valid JSON object (validate with ParseHeader first).
func PatientActive(resource []byte) bool {
	active := true
	_ = walkObject(resource, func(key []byte, escaped bool, value []byte) error {
		if keyIs(key, escaped, "active") {
			active = string(value) != "false"
		}
		return nil
	})
	return active
}
