package bulk

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/storetest"
	"github.com/google/go-cmp/cmp"
)

const (
	pA = storetest.PracticeA
	pB = storetest.PracticeB
)

// patient returns a Patient upsert; member says whether registered. As
// with real ingest, registration shows in the content (here the family
// name), since the store skips a write whose content is unchanged.
func patient(id string, member bool) dtm.Write {
	family := "Registered-" + id
	if !member {
		family = "Deducted-" + id
	}
	w := storetest.PatientWrite(id, family)
	w.Member = member
	return w
}

// obs returns an Observation upsert in patient's compartment.
func obs(id, patient, value string) dtm.Write { return storetest.ObservationWrite(id, patient, value) }

// practitioner returns a resource in no compartment.
func practitioner(id string) dtm.Write {
	return storetest.Upsert("Practitioner", id, "", []byte(`{"resourceType":"Practitioner","id":"`+id+`"}`))
}

func TestExport_GroupFullThenDelta(t *testing.T) {
	testGroupFullThenDelta(t, newTestEnv(t, true, nil))
}

// testGroupFullThenDelta checks a full Group export, then a delta with
// updates, a delete, a joiner, a new patient and a deduction (invariants
// 1 to 3 and 6).
func testGroupFullThenDelta(t *testing.T, e *testEnv) {
	e.apply(pA, patient("p1", true), patient("p2", true), patient("p3", true), patient("p4", false), practitioner("gp1"))
	e.apply(pA, obs("o1", "p1", "1.50"), obs("o2", "p2", "2"), obs("o3", "p3", "3"), obs("o4", "p4", "4"))
	e.apply(pB, patient("q1", true), obs("qo1", "q1", "9"))

	full := e.export("/fhir/Group/" + pA + "/$export")
	// p4 is not registered: their Patient is reported, their record is not.
	want := []string{"Observation/o1", "Observation/o2", "Observation/o3", "Patient/p1", "Patient/p2",
		"Patient/p3", "Patient/p4", "Practitioner/gp1"}
	if d := cmp.Diff(want, full.keys()); d != "" {
		t.Fatalf("full export (-want +got):\n%s", d)
	}
	if len(full.deleted) != 0 || full.errors != 0 {
		t.Fatalf("full export deleted %v, errors %d", full.deleted, full.errors)
	}
	t.Run("OK/Fidelity", func(t *testing.T) {
		for key, line := range full.json {
			typ, id, _ := strings.Cut(key, "/")
			c, err := e.db.Get(e.ctx, pA, typ, id)
			if err != nil || !bytes.Equal(c.JSON, line) {
				t.Errorf("%s: exported %s, stored %s (%v)", key, line, c.JSON, err)
			}
		}
	})

	// After the first export: an update, a delete, a registration of a
	// known patient (p4 joins: their earlier record comes too), a new
	// patient, and a deduction followed by a change that must not be sent.
	e.apply(pA, obs("o1", "p1", "1.60"))
	e.apply(pA, storetest.Delete("Observation", "o2"))
	e.apply(pA, patient("p4", true))
	e.apply(pA, patient("p5", true), obs("o5", "p5", "5"))
	e.apply(pA, patient("p3", false))
	e.apply(pA, obs("o3", "p3", "3.3"))
	e.apply(pB, obs("qo1", "q1", "10"))

	delta := e.export("/fhir/Group/" + pA + "/$export?_since=" + url.QueryEscape(full.m.TransactionTime))
	want = []string{"Observation/o1", "Observation/o4", "Observation/o5", "Patient/p3", "Patient/p4", "Patient/p5"}
	if d := cmp.Diff(want, delta.keys()); d != "" {
		t.Fatalf("delta export (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"Observation/o2"}, delta.deletedKeys()); d != "" {
		t.Fatalf("delta deleted (-want +got):\n%s", d)
	}
	if delta.out["Observation/o1"] != "2" || delta.out["Patient/p3"] != "2" {
		t.Fatalf("versions: o1 %s, p3 %s; want 2, 2", delta.out["Observation/o1"], delta.out["Patient/p3"])
	}

	again := e.export("/fhir/Group/" + pA + "/$export?_since=" + url.QueryEscape(delta.m.TransactionTime))
	if len(again.out) != 0 || len(again.deleted) != 0 {
		t.Fatalf("export with nothing changed: %v %v", again.keys(), again.deletedKeys())
	}
	if again.m.TransactionTime != delta.m.TransactionTime {
		t.Fatalf("transactionTime moved without a commit: %s -> %s", delta.m.TransactionTime, again.m.TransactionTime)
	}
}

func TestExport_SystemAndTypes(t *testing.T) {
	e := newTestEnv(t, true, nil)
	e.apply(pA, patient("p1", false), obs("o1", "p1", "1"))
	e.apply(pB, patient("q1", true), obs("q2", "q1", "2"))
	e.apply(pB, storetest.Delete("Observation", "q2"))
	t.Run("OK/System", func(t *testing.T) {
		x := e.export("/fhir/$export")
		if d := cmp.Diff([]string{"Observation/o1", "Patient/p1", "Patient/q1"}, x.keys()); d != "" {
			t.Fatalf("(-want +got):\n%s", d)
		}
		if d := cmp.Diff([]string{"Observation/q2"}, x.deletedKeys()); d != "" {
			t.Fatalf("deleted (-want +got):\n%s", d)
		}
	})
	t.Run("OK/Type", func(t *testing.T) {
		x := e.export("/fhir/$export?_type=Patient&_outputFormat=ndjson")
		if d := cmp.Diff([]string{"Patient/p1", "Patient/q1"}, x.keys()); d != "" {
			t.Fatalf("(-want +got):\n%s", d)
		}
		if len(x.deleted) != 0 {
			t.Fatalf("deleted %v, want none of type Patient", x.deletedKeys())
		}
	})
	t.Run("OK/PatientLevel", func(t *testing.T) {
		x := e.export("/fhir/Patient/$export")
		if d := cmp.Diff([]string{"Patient/p1", "Patient/q1"}, x.keys()); d != "" {
			t.Fatalf("(-want +got):\n%s", d)
		}
	})
	t.Run("OK/Until", func(t *testing.T) {
		c := e.apply(pA, obs("o9", "p1", "9"))
		x := e.export("/fhir/$export?_type=Observation&_until=" + url.QueryEscape(fhir.FormatInstant(c.Time.Add(-time.Microsecond))))
		if _, ok := x.out["Observation/o9"]; ok {
			t.Fatal("_until did not exclude a later change")
		}
	})
}

func TestExport_Parts(t *testing.T) {
	e := newTestEnv(t, true, func(c *Config) { c.MaxFileResources = 3 })
	e.apply(pA, patient("p1", true))
	for i := range 10 {
		e.apply(pA, obs("o"+string(rune('a'+i)), "p1", "1"))
	}
	m := e.wait(e.kickoff("/fhir/Group/" + pA + "/$export?_type=Observation"))
	var counts []int64
	for _, f := range m.Output {
		counts = append(counts, f.Count)
	}
	if d := cmp.Diff([]int64{3, 3, 3, 1}, counts); d != "" {
		t.Fatalf("part counts (-want +got):\n%s", d)
	}
	if x := e.fetch(m); len(x.out) != 10 {
		t.Fatalf("%d resources, want 10", len(x.out))
	}
}

func TestFile_RetryIdentical(t *testing.T) {
	e := newTestEnv(t, true, nil)
	e.apply(pA, patient("p1", true))
	for i := range 50 {
		e.apply(pA, obs("o"+strings.Repeat("x", i), "p1", "1.0"))
	}
	m := e.wait(e.kickoff("/fhir/$export"))
	for _, f := range m.Output {
		plain1, plain2 := e.download(f.URL, false), e.download(f.URL, false)
		gz1, gz2 := e.download(f.URL, true), e.download(f.URL, true)
		if !bytes.Equal(plain1, plain2) || !bytes.Equal(plain1, gz1) || !bytes.Equal(gz1, gz2) {
			t.Fatalf("%s: retries differ", f.URL)
		}
		raw := func() []byte {
			_, b := read(t, e.do("GET", f.URL, nil, "Accept-Encoding: gzip"))
			return b
		}
		if !bytes.Equal(raw(), raw()) {
			t.Fatalf("%s: gzip bytes differ between retries", f.URL)
		}
	}
}

func TestStatus(t *testing.T) {
	t.Run("OK/InProgress", func(t *testing.T) {
		e := newTestEnv(t, false, nil)
		resp := e.do("GET", e.kickoff("/fhir/$export"), nil)
		if status, _ := read(t, resp); status != http.StatusAccepted ||
			resp.Header.Get("X-Progress") != "accepted" || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("status %d, headers %v", status, resp.Header)
		}
	})
	t.Run("OK/Cancel", func(t *testing.T) {
		e := newTestEnv(t, true, nil)
		e.apply(pA, patient("p1", true))
		loc := e.kickoff("/fhir/$export")
		m := e.wait(loc)
		wantOutcome(t, e.do("DELETE", loc, nil), http.StatusAccepted, "cancelled")
		wantOutcome(t, e.do("GET", loc, nil), http.StatusNotFound, "cancelled")
		wantOutcome(t, e.do("GET", m.Output[0].URL, nil), http.StatusNotFound, "cancelled")
		wantOutcome(t, e.do("DELETE", loc, nil), http.StatusNotFound, "cancelled")
	})
	t.Run("ErrTooMany", func(t *testing.T) {
		e := newTestEnv(t, false, func(c *Config) { c.MaxActiveJobs = 1 })
		e.kickoff("/fhir/$export", clientHeader+": alice")
		resp := e.do("GET", "/fhir/$export", nil, "Prefer: respond-async", clientHeader+": alice")
		if resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		wantOutcome(t, resp, http.StatusTooManyRequests, "too many")
		e.kickoff("/fhir/$export", clientHeader+": bob") // another client is not limited
	})
	t.Run("ErrForbidden", func(t *testing.T) {
		e := newTestEnv(t, true, nil)
		e.apply(pA, patient("p1", true))
		loc := e.kickoff("/fhir/$export", clientHeader+": alice")
		m := e.wait(loc, clientHeader+": alice")
		wantOutcome(t, e.do("GET", loc, nil, clientHeader+": bob"), http.StatusForbidden, "another client")
		wantOutcome(t, e.do("DELETE", loc, nil, clientHeader+": bob"), http.StatusForbidden, "another client")
		wantOutcome(t, e.do("GET", m.Output[0].URL, nil, clientHeader+": bob"), http.StatusForbidden, "another client")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		e := newTestEnv(t, false, nil)
		wantOutcome(t, e.do("GET", "/fhir/_export/nope", nil), http.StatusNotFound, "no such export")
		wantOutcome(t, e.do("GET", "/fhir/_export/nope/1-Patient.ndjson", nil), http.StatusNotFound, "no such export")
	})
	t.Run("ErrFileName", func(t *testing.T) {
		e := newTestEnv(t, true, nil)
		e.apply(pA, patient("p1", true))
		loc := e.kickoff("/fhir/$export")
		e.wait(loc)
		for _, name := range []string{"1-Observation.ndjson", "2-Patient.ndjson", "0-Patient.ndjson", "x"} {
			wantOutcome(t, e.do("GET", loc+"/"+name, nil), http.StatusNotFound, "no such export file")
		}
	})
}

func TestKickoff(t *testing.T) {
	e := newTestEnv(t, false, nil)
	async := "Prefer: respond-async"
	t.Run("ErrUnknownGroup", func(t *testing.T) {
		wantOutcome(t, e.do("GET", "/fhir/Group/Z99999/$export", nil, async), http.StatusNotFound, "Z99999")
	})
	t.Run("ErrNotAnODSCode", func(t *testing.T) {
		wantOutcome(t, e.do("GET", "/fhir/Group/nope/$export", nil, async), http.StatusNotFound, "Group")
	})
	t.Run("ErrNoPrefer", func(t *testing.T) {
		wantOutcome(t, e.do("GET", "/fhir/$export", nil), http.StatusBadRequest, "respond-async")
	})
	t.Run("ErrType", func(t *testing.T) {
		wantOutcome(t, e.do("GET", "/fhir/$export?_type=Nope", nil, async), http.StatusBadRequest, "Nope")
	})
	t.Run("ErrUnsupported", func(t *testing.T) {
		wantOutcome(t, e.do("GET", "/fhir/$export?_typeFilter=x", nil, async), http.StatusBadRequest, "_typeFilter")
	})
	t.Run("ErrFutureSince", func(t *testing.T) {
		since := url.QueryEscape(fhir.FormatInstant(time.Now().Add(time.Hour)))
		wantOutcome(t, e.do("GET", "/fhir/$export?_since="+since, nil, async), http.StatusBadRequest, "future")
	})
	t.Run("ErrPostBody", func(t *testing.T) {
		wantOutcome(t, e.do("POST", "/fhir/$export", strings.NewReader(`{"resourceType":"Patient"}`), async),
			http.StatusBadRequest, "Parameters")
	})
	t.Run("ErrUnknownEndpoint", func(t *testing.T) {
		wantOutcome(t, e.do("GET", "/fhir/Observation/$export", nil, async), http.StatusNotFound, "no such endpoint")
	})
	t.Run("ErrForbiddenGroup", func(t *testing.T) {
		e := newTestEnv(t, false, func(c *Config) {
			c.Caller = func(*http.Request) (string, []string) { return "c", []string{pB} }
		})
		wantOutcome(t, e.do("GET", "/fhir/Group/"+pA+"/$export", nil, async), http.StatusForbidden, pA)
	})
}

func TestKickoff_PostLenient(t *testing.T) {
	e := newTestEnv(t, true, nil)
	e.apply(pA, patient("p1", true), obs("o1", "p1", "1"))
	body := `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Observation"},
		{"name":"_elements","valueString":"id"},{"name":"_outputFormat","valueString":"application/ndjson"}]}`
	resp := e.do("POST", "/fhir/Group/"+pA+"/$export", strings.NewReader(body),
		"Prefer: respond-async, handling=lenient", "Content-Type: application/fhir+json")
	status, b := read(t, resp)
	if status != http.StatusAccepted {
		t.Fatalf("%d %s", status, b)
	}
	x := e.fetch(e.wait(resp.Header.Get("Content-Location")))
	if d := cmp.Diff([]string{"Observation/o1"}, x.keys()); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if x.errors != 1 || len(x.m.Error) != 1 || x.m.Error[0].Type != "OperationOutcome" {
		t.Fatalf("error files %+v, %d lines; want one OperationOutcome line", x.m.Error, x.errors)
	}
	if !strings.Contains(x.m.Request, "_type=Observation") || !strings.HasPrefix(x.m.Request, e.hs.URL) {
		t.Fatalf("request = %q", x.m.Request)
	}
}

// TestFile_Fidelity checks invariant 6 on awkward JSON: decimal precision,
// escaped and raw unicode, extensions and unknown elements, and a resource
// stored across lines (which is made one line without touching a value).
func TestFile_Fidelity(t *testing.T) {
	e := newTestEnv(t, true, nil)
	odd := `{"resourceType":"Observation","id":"odd","status":"final",` +
		`"extension":[{"url":"https://example.org/x","valueDecimal":1.500}],"_status":{"id":"s1"},` +
		`"code":{"text":"caf\u00e9 – naïve 🩺 \"quoted\" \\ slash"},"subject":{"reference":"Patient/p1"},` +
		`"valueQuantity":{"value":0.10,"unit":"mmol/L"},"futureElement":{"nested":[1,2.0,3e2]}}`
	pretty := "{\n  \"resourceType\": \"Observation\",\n  \"id\": \"pretty\",\n  \"status\": \"final\",\n" +
		"  \"code\": {\n    \"text\": \"two\\nlines\"\n  },\n  \"valueQuantity\": {\n    \"value\": 5.60\n  }\n}"
	e.apply(pA, patient("p1", true),
		storetest.Upsert("Observation", "odd", "p1", []byte(odd)),
		storetest.Upsert("Observation", "pretty", "p1", []byte(pretty)))
	x := e.export("/fhir/Group/" + pA + "/$export?_type=Observation")
	for _, id := range []string{"odd", "pretty"} {
		stored, err := e.db.Get(e.ctx, pA, "Observation", id)
		if err != nil {
			t.Fatal(err)
		}
		want := string(oneLine(stored.JSON))
		got := string(x.json["Observation/"+id])
		if got != want {
			t.Errorf("%s: exported %s, want %s", id, got, want)
		}
	}
	if got := string(x.json["Observation/odd"]); !strings.Contains(got, `"valueDecimal":1.500`) ||
		!strings.Contains(got, `caf\u00e9 – naïve 🩺`) || !strings.Contains(got, `"value":0.10`) ||
		!strings.Contains(got, `"futureElement":{"nested":[1,2.0,3e2]}`) {
		t.Errorf("odd resource altered: %s", got)
	}
	if got := string(x.json["Observation/pretty"]); !strings.Contains(got, `"value":5.60`) || !strings.Contains(got, `two\nlines`) {
		t.Errorf("pretty resource altered: %s", got)
	}
}
