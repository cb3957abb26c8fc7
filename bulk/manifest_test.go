package bulk

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/google/go-cmp/cmp"
)

func TestRenderManifest(t *testing.T) {
	job := &dtm.ExportJob{
		ID:              "J1",
		Request:         "http://h/fhir/Group/A12345/$export?_since=x",
		TransactionTime: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		Files: []dtm.ExportFile{
			{Kind: dtm.FileOutput, Type: "Observation", Count: 3},
			{Kind: dtm.FileOutput, Type: "Patient", Count: 1},
			{Kind: dtm.FileDeleted, Type: "Bundle", Count: 2},
			{Kind: dtm.FileError, Type: "OperationOutcome", Count: 1},
		},
	}
	var got map[string]any
	if err := json.Unmarshal(renderManifest(job, "http://h", true), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"transactionTime":     "2026-01-02T03:04:05.000006Z",
		"request":             "http://h/fhir/Group/A12345/$export?_since=x",
		"requiresAccessToken": true,
		"output": []any{
			map[string]any{"type": "Observation", "url": "http://h/fhir/_export/J1/1-Observation.ndjson", "count": 3.0},
			map[string]any{"type": "Patient", "url": "http://h/fhir/_export/J1/2-Patient.ndjson", "count": 1.0},
		},
		"deleted": []any{map[string]any{"type": "Bundle", "url": "http://h/fhir/_export/J1/3-Bundle.ndjson", "count": 2.0}},
		"error":   []any{map[string]any{"type": "OperationOutcome", "url": "http://h/fhir/_export/J1/4-OperationOutcome.ndjson", "count": 1.0}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("manifest (-want +got):\n%s", d)
	}
	t.Run("OK/EmptyListsAreArrays", func(t *testing.T) {
		var m map[string]any
		json.Unmarshal(renderManifest(&dtm.ExportJob{ID: "J2"}, "http://h", false), &m)
		for _, k := range []string{"output", "deleted", "error"} {
			if a, ok := m[k].([]any); !ok || len(a) != 0 {
				t.Errorf("%s = %#v, want []", k, m[k])
			}
		}
	})
}

func TestDeletedBundle(t *testing.T) {
	c := &dtm.Change{Type: "Observation", ID: "o-1", Op: dtm.OpDelete, CommitTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	got := string(deletedBundle(c))
	want := `{"resourceType":"Bundle","type":"transaction","timestamp":"2026-01-02T03:04:05.000000Z","entry":[{"request":{"method":"DELETE","url":"Observation/o-1"}}]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Error("not valid JSON")
	}
}

func TestOneLine(t *testing.T) {
	t.Run("OK/Unchanged", func(t *testing.T) {
		in := []byte(`{"resourceType":"Observation", "valueQuantity":{"value":1.50}}`)
		if got := oneLine(in); string(got) != string(in) {
			t.Errorf("got %s", got)
		}
	})
	t.Run("OK/MultiLine", func(t *testing.T) {
		in := []byte("{\n  \"resourceType\": \"Observation\",\n  \"valueQuantity\": {\"value\": 1.50},\n  \"note\": [{\"text\": \"a\\nb \u00e9\"}]\n}")
		want := `{"resourceType":"Observation","valueQuantity":{"value":1.50},"note":[{"text":"a\nb ` + "\u00e9" + `"}]}`
		if got := oneLine(in); string(got) != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
}

func TestAcceptsGzip(t *testing.T) {
	for in, want := range map[string]bool{
		"": false, "gzip": true, "gzip, deflate, br": true, "br;q=1.0, GZIP;q=0.5": true,
		"gzip;q=0": false, "deflate": false, "x-gzip": false,
	} {
		if got := acceptsGzip([]string{in}); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestNumberParts(t *testing.T) {
	files := []dtm.ExportFile{
		{Kind: dtm.FileOutput, Type: "Patient", Practice: "B", FromSeq: 0},
		{Kind: dtm.FileOutput, Type: "Patient", Practice: "A", Joiners: []string{"p1"}},
		{Kind: dtm.FileDeleted, Type: "Bundle", Practice: "A"},
		{Kind: dtm.FileOutput, Type: "Patient", Practice: "A", FromSeq: 10},
		{Kind: dtm.FileOutput, Type: "Patient", Practice: "A", FromSeq: 0},
	}
	numberParts(files)
	type key struct {
		Kind, Practice string
		From           int64
		Joiner         bool
		Part           int
	}
	var got []key
	for _, f := range files {
		got = append(got, key{f.Kind, f.Practice, f.FromSeq, len(f.Joiners) > 0, f.Part})
	}
	want := []key{
		{dtm.FileOutput, "A", 0, false, 1}, {dtm.FileOutput, "A", 10, false, 2}, {dtm.FileOutput, "A", 0, true, 3},
		{dtm.FileOutput, "B", 0, false, 1}, {dtm.FileDeleted, "A", 0, false, 1},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
