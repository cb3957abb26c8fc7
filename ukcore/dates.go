package ukcore

import (
	"strconv"
	"strings"
	"time"
)

// pastDates lists, per resource type, the elements that record when
// something happened, was recorded or was issued: a value later than now is
// a data error. Elements that legitimately hold future dates are absent on
// purpose: Appointment, Slot, Schedule and Task dates, Encounter periods of
// planned encounters, CarePlan and Flag periods, MedicationRequest
// dispense and validity periods, MedicationStatement effective periods
// (a planned end), Immunization.expirationDate and recommendations,
// ServiceRequest.occurrence (deferred referrals), Observation.value[x]
// (an expected date of delivery), Coverage and Claim periods.
var pastDates = map[string][]string{
	"Patient":                  {"birthDate", "deceasedDateTime"},
	"RelatedPerson":            {"birthDate"},
	"Practitioner":             {"birthDate"},
	"Observation":              {"effectiveDateTime", "effectiveInstant", "effectivePeriod.start", "issued"},
	"Condition":                {"onsetDateTime", "onsetPeriod.start", "abatementDateTime", "abatementPeriod.start", "recordedDate"},
	"AllergyIntolerance":       {"onsetDateTime", "onsetPeriod.start", "recordedDate", "lastOccurrence", "reaction.onset"},
	"Immunization":             {"occurrenceDateTime", "recorded"},
	"Procedure":                {"performedDateTime", "performedPeriod.start"},
	"DiagnosticReport":         {"effectiveDateTime", "effectivePeriod.start", "issued"},
	"MedicationRequest":        {"authoredOn"},
	"MedicationStatement":      {"dateAsserted"},
	"MedicationAdministration": {"effectiveDateTime", "effectivePeriod.start"},
	"MedicationDispense":       {"whenPrepared", "whenHandedOver"},
	"DocumentReference":        {"date"},
	"Composition":              {"date"},
	"Specimen":                 {"receivedTime", "collection.collectedDateTime", "collection.collectedPeriod.start"},
	"FamilyMemberHistory":      {"date"},
	"Provenance":               {"recorded"},
	"AuditEvent":               {"recorded"},
	"Consent":                  {"dateTime"},
	"Communication":            {"sent", "received"},
	"ServiceRequest":           {"authoredOn"},
	"QuestionnaireResponse":    {"authored"},
	"ImagingStudy":             {"started"},
	"CarePlan":                 {"created"},
}

// pastDateSteps is pastDates with each path split into steps.
var pastDateSteps = func() map[string][][]string {
	out := make(map[string][][]string, len(pastDates))
	for typ, paths := range pastDates {
		for _, p := range paths {
			out[typ] = append(out[typ], strings.Split(p, "."))
		}
	}
	return out
}()

// encounterHappened holds the Encounter statuses under which period.start
// records the past; planned encounters may start in the future.
var encounterHappened = map[string]bool{
	"arrived": true, "triaged": true, "in-progress": true, "onleave": true, "finished": true,
}

// clockSkew is how far past now a dateTime with a time may be before it
// counts as in the future, allowing for clocks that differ between systems.
const clockSkew = 5 * time.Minute

// dates reports elements of the current resource dated in the future.
func (w *walker) dates(m map[string]any) {
	for _, steps := range pastDateSteps[w.res.typ] {
		w.pastDate(m, steps, "")
	}
	if w.res.typ == "Encounter" {
		if status, _ := m["status"].(string); encounterHappened[status] {
			w.pastDate(m, []string{"period", "start"}, "")
		}
	}
}

// pastDate follows steps from m (through arrays too) and reports a date
// found there that is in the future. prefix is the path walked so far.
func (w *walker) pastDate(m map[string]any, steps []string, prefix string) {
	name := steps[0]
	switch v := m[name].(type) {
	case string:
		if len(steps) == 1 && w.inFuture(v) {
			w.add(SeverityError, "business-rule", RuleDateInFuture, prefix+name,
				name+" is in the future")
		}
	case map[string]any:
		if len(steps) > 1 {
			w.pastDate(v, steps[1:], prefix+name+".")
		}
	case []any:
		if len(steps) > 1 {
			for i, e := range v {
				if o, ok := e.(map[string]any); ok {
					w.pastDate(o, steps[1:], prefix+indexed(name, i)+".")
				}
			}
		}
	}
}

// inFuture reports whether the FHIR date, dateTime or instant s certainly
// lies after now: a partial date ("2024", "2024-05", "2024-05-01") counts
// from its first moment anywhere on Earth (UTC+14), a time from its instant
// less clockSkew. Unparseable values are left to the structural check.
func (w *walker) inFuture(s string) bool {
	t, ok := earliestInstant(s)
	return ok && t.After(w.now.Add(clockSkew))
}

// earliestZone is the time zone where each calendar day starts first.
var earliestZone = time.FixedZone("UTC+14", 14*60*60)

// earliestInstant returns the first instant the FHIR date, dateTime or
// instant s can denote.
func earliestInstant(s string) (time.Time, bool) {
	if len(s) > 10 {
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil
	}
	year, month, day := 0, 1, 1
	var err error
	switch len(s) {
	case 4:
		year, err = strconv.Atoi(s)
	case 7:
		if s[4] != '-' {
			return time.Time{}, false
		}
		if year, err = strconv.Atoi(s[:4]); err == nil {
			month, err = strconv.Atoi(s[5:])
		}
	case 10:
		var t time.Time
		t, err = time.ParseInLocation(time.DateOnly, s, earliestZone)
		return t, err == nil
	default:
		return time.Time{}, false
	}
	if err != nil || year < 0 || month < 1 || month > 12 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, earliestZone), true
}
