package fhir

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// nest builds a resource with a reference at path, each element along the
// way an array (after a decoy element) when arrays is set, else an object.
func nest(resourceType, path, ref string, arrays bool) string {
	segs := strings.Split(path, ".")
	v := `{"reference":"` + ref + `","display":"x"}`
	for i := len(segs) - 1; i >= 0; i-- {
		if arrays {
			v = `[{"other":{"reference":"Patient/decoy"}},` + v + `]`
		}
		v = `"` + segs[i] + `":` + v
		if i > 0 {
			v = `{` + v + `}`
		}
	}
	return `{"resourceType":"` + resourceType + `","id":"r1","text":{"div":"<div>Patient/nope</div>"},` + v + `}`
}

func TestCompartment_EveryType(t *testing.T) {
	for typ, paths := range patientCompartment {
		for _, p := range paths {
			for _, arrays := range []bool{false, true} {
				t.Run(typ+"/"+p, func(t *testing.T) {
					in := nest(typ, p, "Patient/pt-"+typ, arrays)
					got, err := Compartment(typ, []byte(in))
					if err != nil || got != "pt-"+typ {
						t.Fatalf("Compartment(%s) = %q, %v; want %q", in, got, err, "pt-"+typ)
					}
					// A reference to something else is not a compartment.
					in = nest(typ, p, "Practitioner/pt-"+typ, arrays)
					if got, err := Compartment(typ, []byte(in)); err != nil || got != "" {
						t.Fatalf("Compartment(%s) = %q, %v; want none", in, got, err)
					}
				})
			}
		}
	}
}

func TestCompartment(t *testing.T) {
	tests := []struct {
		name, typ, in, want string
	}{
		{"Patient", "Patient", `{"resourceType":"Patient","id":"p1","link":[{"other":{"reference":"Patient/p2"}}]}`, "p1"},
		{"Observation/Subject", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/p1"}}`, "p1"},
		{"Observation/SubjectFirst", "Observation", `{"resourceType":"Observation","id":"o","performer":[{"reference":"Patient/p2"}],"subject":{"reference":"Patient/p1"}}`, "p1"},
		{"Observation/GroupSubjectThenPerformer", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"Group/g"},"performer":[{"reference":"Practitioner/d"},{"reference":"Patient/p2"}]}`, "p2"},
		{"Observation/Absolute", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"https://fhir.example.nhs.uk/R4/Patient/p9"}}`, "p9"},
		{"Observation/History", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/p9/_history/3"}}`, "p9"},
		{"Observation/AbsoluteHistory", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"http://x/fhir/Patient/p9/_history/3"}}`, "p9"},
		{"Observation/Contained", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"#p"}}`, ""},
		{"Observation/URN", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"urn:uuid:2b7d0224-9e7e-3186-b6c2-93a5c3181543"}}`, ""},
		{"Observation/Conditional", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"Patient?identifier=x|1"}}`, ""},
		{"Observation/IdentifierOnly", "Observation", `{"resourceType":"Observation","id":"o","subject":{"type":"Patient","identifier":{"value":"1"}}}`, ""},
		{"Observation/NotAReference", "Observation", `{"resourceType":"Observation","id":"o","subject":"Patient/p1"}`, ""},
		{"Observation/OtherElement", "Observation", `{"resourceType":"Observation","id":"o","focus":[{"reference":"Patient/p1"}]}`, ""},
		{"Observation/Extension", "Observation", `{"resourceType":"Observation","id":"o","extension":[{"url":"u","valueReference":{"reference":"Patient/p1"}}]}`, ""},
		{"Observation/NoRef", "Observation", `{"resourceType":"Observation","id":"o"}`, ""},
		{"Encounter", "Encounter", `{"resourceType":"Encounter","id":"e","subject":{"reference":"Patient/p1"}}`, "p1"},
		{"Condition/Asserter", "Condition", `{"resourceType":"Condition","id":"c","asserter":{"reference":"Patient/p1"}}`, "p1"},
		{"AllergyIntolerance", "AllergyIntolerance", `{"resourceType":"AllergyIntolerance","id":"a","recorder":{"reference":"Patient/r"},"patient":{"reference":"Patient/p1"}}`, "p1"},
		{"Appointment", "Appointment", `{"resourceType":"Appointment","id":"a","participant":[{"actor":{"reference":"Location/l"}},{"actor":{"reference":"Patient/p1"}}]}`, "p1"},
		{"Schedule", "Schedule", `{"resourceType":"Schedule","id":"s","actor":[{"reference":"Practitioner/d"},{"reference":"Patient/p1"}]}`, "p1"},
		{"Task/For", "Task", `{"resourceType":"Task","id":"t","for":{"reference":"Patient/p1"}}`, "p1"},
		{"AuditEvent/Entity", "AuditEvent", `{"resourceType":"AuditEvent","id":"a","agent":[{"who":{"reference":"Practitioner/d"}}],"entity":[{"what":{"reference":"Patient/p1"}}]}`, "p1"},
		{"Provenance", "Provenance", `{"resourceType":"Provenance","id":"p","target":[{"reference":"Observation/o"},{"reference":"Patient/p1"}]}`, "p1"},
		{"Procedure/PerformerActor", "Procedure", `{"resourceType":"Procedure","id":"p","performer":[{"actor":{"reference":"Patient/p1"}}]}`, "p1"},
		{"List/Source", "List", `{"resourceType":"List","id":"l","source":{"reference":"Patient/p1"}}`, "p1"},
		{"CarePlan/ActivityDetailPerformer", "CarePlan", `{"resourceType":"CarePlan","id":"c","activity":[{"detail":{"performer":[{"reference":"Patient/p1"}]}}]}`, "p1"},
		{"Slot", "Slot", `{"resourceType":"Slot","id":"s","schedule":{"reference":"Schedule/s"}}`, ""},
		{"Binary", "Binary", `{"resourceType":"Binary","id":"b","securityContext":{"reference":"Patient/p1"}}`, ""},
		{"Organization", "Organization", `{"resourceType":"Organization","id":"o"}`, ""},
		{"Practitioner", "Practitioner", `{"resourceType":"Practitioner","id":"d"}`, ""},
		{"PractitionerRole", "PractitionerRole", `{"resourceType":"PractitionerRole","id":"r","practitioner":{"reference":"Practitioner/d"}}`, ""},
		{"Location", "Location", `{"resourceType":"Location","id":"l"}`, ""},
		{"Group", "Group", `{"resourceType":"Group","id":"A12345","member":[{"entity":{"reference":"Patient/p1"}}]}`, ""},
		{"UnknownType", "Frobnicate", `{"resourceType":"Frobnicate","id":"f","subject":{"reference":"Patient/p1"}}`, ""},
		{"EscapedKeys", "Observation", `{"resourceType":"Observation","id":"o","subj\u0065ct":{"r\u0065ference":"Patient\/p1"}}`, "p1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compartment(tt.typ, []byte(tt.in))
			if err != nil || got != tt.want {
				t.Fatalf("Compartment = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestCompartment_Err(t *testing.T) {
	tests := []struct{ name, typ, in, err string }{
		{"ErrSyntax", "Observation", `{"resourceType":"Observation","id":"o",`, "invalid JSON"},
		{"ErrSyntaxNoPaths", "Organization", `{"resourceType":"Organization","id":"o",}`, "invalid JSON"},
		{"ErrReferenceNotString", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":7}}`, "subject.reference is not a string"},
		{"ErrBadPatientID", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/../../etc"}}`, "subject.reference: patient reference with an invalid id"},
		{"ErrBadAbsolutePatientID", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"http://x/Patient/a b"}}`, "invalid id"},
		{"ErrEmptyPatientID", "Observation", `{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/"}}`, "invalid id"},
		{"ErrPatientNoID", "Patient", `{"resourceType":"Patient"}`, "missing id"},
		{"ErrPatientBadID", "Patient", `{"resourceType":"Patient","id":"a/b"}`, "invalid id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compartment(tt.typ, []byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.err) || got != "" {
				t.Fatalf("Compartment = %q, %v; want error containing %q", got, err, tt.err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
		})
	}
}

func TestCompartment_UKCoreExamples(t *testing.T) {
	lines := MustReadLines(t, sharedData(t, "ukcore-examples.ndjson"))
	if len(lines) != 215 {
		t.Fatalf("%d examples, want 215", len(lines))
	}
	in := 0
	for i, l := range lines {
		h, err := ParseHeader(l)
		if err != nil {
			t.Errorf("example %d: ParseHeader: %v", i+1, err)
			continue
		}
		p, err := Compartment(h.ResourceType, l)
		if err != nil {
			t.Errorf("example %d (%s/%s): Compartment: %v", i+1, h.ResourceType, h.ID, err)
		}
		if p != "" {
			in++
		}
		if h.ResourceType == "Patient" && p != h.ID {
			t.Errorf("Patient %s: compartment %q", h.ID, p)
		}
	}
	t.Logf("%d of %d examples are in a patient compartment", in, len(lines))
	if in < 50 {
		t.Errorf("only %d examples in a patient compartment", in)
	}
}

func TestPatientCompartmentTypes(t *testing.T) {
	types := PatientCompartmentTypes()
	for _, want := range []string{"Patient", "Observation", "Task", "Appointment", "AuditEvent"} {
		if !slices.Contains(types, want) {
			t.Errorf("missing %s", want)
		}
	}
	for _, not := range []string{"Slot", "Binary", "Organization", "Practitioner", "Group", "Location"} {
		if slices.Contains(types, not) {
			t.Errorf("has %s", not)
		}
	}
	if !slices.IsSorted(types) {
		t.Error("not sorted")
	}
}

func TestPatientActive(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`{"resourceType":"Patient","id":"p","active":false}`, false},
		{`{"resourceType":"Patient","id":"p","active" : false }`, false},
		{`{"resourceType":"Patient","id":"p","active":true}`, true},
		{`{"resourceType":"Patient","id":"p"}`, true},
		{`{"resourceType":"Patient","id":"p","active":"false"}`, true},
		{`{"resourceType":"Patient","id":"p","active":null}`, true},
		{`{"resourceType":"Patient","id":"p","_active":{"extension":[]},"active":false}`, false},
		{`{"resourceType":"Patient","id":"p","contact":[{"active":false}]}`, true},
		{`not json`, true},
	}
	for _, tt := range tests {
		if got := PatientActive([]byte(tt.in)); got != tt.want {
			t.Errorf("PatientActive(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzCompartment(f *testing.F) {
	f.Add("Observation", []byte(`{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/p1"}}`))
	f.Add("Appointment", []byte(`{"resourceType":"Appointment","id":"a","participant":[{"actor":{"reference":"http://x/Patient/p1/_history/2"}}]}`))
	f.Add("Patient", []byte(`{"resourceType":"Patient","id":"p1"}`))
	f.Add("CarePlan", []byte(`{"activity":[[{"detail":{"performer":[{"reference":"Patient/x"}]}}]]}`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		id, err := Compartment(typ, data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		if id != "" && CheckID(id) != nil {
			t.Fatalf("Compartment returned an invalid id %q", id)
		}
		if walkObject(data, nil) != nil {
			t.Fatal("Compartment accepted invalid JSON")
		}
	})
}
