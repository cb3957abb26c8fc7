package synth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"github.com/google/go-cmp/cmp"
)

// monday is a Monday in winter (GMT); simulations start at midnight.
var monday = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// MustSimulator returns a simulator for testOpts with rates multiplied by
// factor so that a small practice sees every kind of event.
func MustSimulator(tb testing.TB, factor float64) *Simulator {
	tb.Helper()
	s, err := NewSimulator(testOpts, 5, monday)
	if err != nil {
		tb.Fatal(err)
	}
	s.factor = factor
	return s
}

// MustEvents runs s until to and returns its events.
func MustEvents(tb testing.TB, s *Simulator, to time.Time) []Event {
	tb.Helper()
	var evs []Event
	if err := s.Step(context.Background(), to, func(ev Event) error {
		evs = append(evs, ev)
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return evs
}

func digest(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		sum := sha256.Sum256(ev.JSON)
		out[i] = fmt.Sprintf("%s %s %s/%s %s %s", ev.Time.Format(time.RFC3339), ev.Op, ev.Type, ev.ID, ev.Kind, hex.EncodeToString(sum[:8]))
	}
	return out
}

func TestSimulator_Deterministic(t *testing.T) {
	end := monday.AddDate(0, 0, 2)
	whole := MustEvents(t, MustSimulator(t, 20), end)
	s := MustSimulator(t, 20)
	var parts []Event
	for _, to := range []time.Time{monday.Add(9*time.Hour + 17*time.Minute), monday.Add(30 * time.Hour), end} {
		parts = append(parts, MustEvents(t, s, to)...)
	}
	if len(whole) == 0 {
		t.Fatal("no events")
	}
	if diff := cmp.Diff(digest(whole), digest(parts)); diff != "" {
		t.Errorf("one step and three steps differ (-one +three):\n%s", diff)
	}
}

func TestSimulator_TimeOrderAndQuietWeekends(t *testing.T) {
	s := MustSimulator(t, 20)
	evs := MustEvents(t, s, monday.AddDate(0, 0, 7))
	london, _ := time.LoadLocation("Europe/London")
	perDay := map[time.Weekday]int{}
	night := 0
	for i, ev := range evs {
		if i > 0 && ev.Time.Before(evs[i-1].Time) {
			t.Fatalf("event %d at %v before previous at %v", i, ev.Time, evs[i-1].Time)
		}
		if ev.Time.Before(monday) || !ev.Time.Before(monday.AddDate(0, 0, 7)) {
			t.Errorf("event at %v outside the simulated week", ev.Time)
		}
		l := ev.Time.In(london)
		perDay[l.Weekday()]++
		if h := l.Hour(); (h < 8 || h >= 19) && ev.Kind == KindConsultation {
			night++
		}
	}
	if night > 0 {
		t.Errorf("%d consultation events at night", night)
	}
	weekday := perDay[time.Wednesday]
	for _, d := range []time.Weekday{time.Saturday, time.Sunday} {
		if perDay[d]*20 > weekday {
			t.Errorf("%v: %d events, Wednesday %d: weekend not quiet", d, perDay[d], weekday)
		}
	}
}

// TestSimulator_ChangesApply replays the events onto the generated practice:
// deletes and amendments must refer to existing resources, versions must
// go up by one, registrants must bring their history, and at the end every
// reference in the practice must resolve.
func TestSimulator_ChangesApply(t *testing.T) {
	state := map[string][]byte{}
	versions := map[string]int{}
	for _, r := range MustPractice(t) {
		key := r.Type + "/" + r.ID
		state[key], versions[key] = r.JSON, 1
	}
	s := MustSimulator(t, 60)
	s.boost = map[string]float64{KindDeath: 10, KindDeletion: 4, KindRegistration: 2, KindDeduction: 2}
	evs := MustEvents(t, s, monday.AddDate(0, 0, 3))
	kinds := map[string]int{}
	registrantTypes := map[string]map[string]bool{}
	for _, ev := range evs {
		kinds[ev.Kind]++
		key := ev.Type + "/" + ev.ID
		switch ev.Op {
		case OpDelete:
			if _, ok := state[key]; !ok {
				t.Errorf("delete of missing %s", key)
			}
			delete(state, key)
		case OpUpsert:
			var m struct {
				Meta struct{ VersionID string } `json:"meta"`
				ID   string
			}
			if err := json.Unmarshal(ev.JSON, &m); err != nil || m.ID != ev.ID {
				t.Fatalf("%s: bad JSON or id (%v)", key, err)
			}
			want := versions[key] + 1
			if _, ok := state[key]; !ok {
				want = 1
			}
			if got := m.Meta.VersionID; got != fmt.Sprint(want) {
				t.Errorf("%s (%s): versionId %s, want %d", key, ev.Kind, got, want)
			}
			if ev.Kind == KindAmendment && want == 1 {
				t.Errorf("amendment of missing %s", key)
			}
			state[key], versions[key] = ev.JSON, want
			if ev.Kind == KindRegistration {
				pat := ev.ID
				if ev.Type != "Patient" {
					pat = "pat-" + strings.Split(ev.ID, "-")[1] // ids are <prefix>-<patient>-<n>
				}
				if registrantTypes[pat] == nil {
					registrantTypes[pat] = map[string]bool{}
				}
				registrantTypes[pat][ev.Type] = true
			}
		}
	}
	for _, k := range []string{KindConsultation, KindPrescription, KindAmendment, KindDeletion, KindRegistration,
		KindDeduction, KindDeath, KindBooking, KindCancellation, KindDocument, KindTask} {
		if kinds[k] == 0 {
			t.Errorf("no %s events", k)
		}
	}
	for pat, types := range registrantTypes {
		if !types["Patient"] || !types["Encounter"] || len(types) < 5 {
			t.Errorf("registrant %s brought only %v", pat, types)
		}
	}
	for key, js := range state {
		var obj any
		d := json.NewDecoder(bytes.NewReader(js))
		d.UseNumber()
		if err := d.Decode(&obj); err != nil {
			t.Fatal(err)
		}
		walk(obj, func(m map[string]any) {
			if ref, ok := m["reference"].(string); ok && state[ref] == nil {
				t.Errorf("%s: reference %s does not resolve", key, ref)
			}
		})
	}
}

func TestSimulator_EventsValid(t *testing.T) {
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		t.Fatal(err)
	}
	evs := MustEvents(t, MustSimulator(t, 40), monday.AddDate(0, 0, 1))
	every := 1
	if raceEnabled || testing.Short() {
		every = 10
	}
	for i, ev := range evs {
		if ev.Op != OpUpsert || i%every != 0 {
			continue
		}
		if _, err := u.Unmarshal(ev.JSON); err != nil {
			t.Errorf("%s %s/%s: %v\n%s", ev.Kind, ev.Type, ev.ID, err, ev.JSON)
		}
	}
}

func TestNewSimulator_Errors(t *testing.T) {
	if _, err := NewSimulator(Options{Practice: "A81001"}, 1, DefaultBase); err == nil {
		t.Error("no patients: want an error")
	}
	if _, err := NewSimulator(Options{Practice: "A81001", Patients: 1}, 1, DefaultBase.Add(-time.Hour)); err == nil {
		t.Error("start before base: want an error")
	}
}

func TestAmend_KeepsDecimals(t *testing.T) {
	in := []byte(`{"resourceType":"Observation","id":"o1","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00Z"},"status":"final","valueQuantity":{"value":5.60,"unit":"mmol/L"},"note":null,"text":"<b>&</b>"}`)
	out, err := amend(in, "Observation", 2, monday)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`{"resourceType":"Observation",`, `"value":5.60`, `"versionId":"2"`, `"status":"amended"`, `"<b>&</b>"`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("amended JSON lacks %s:\n%s", want, out)
		}
	}
	if !json.Valid(out) {
		t.Errorf("invalid JSON: %s", out)
	}
}
