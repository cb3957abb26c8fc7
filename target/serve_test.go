package target_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/target"
)

// testServe checks the read-only FHIR API over a target that holds the
// source's practice.
func testServe(t *testing.T, src, tgt *sqlite.DB) {
	srv := httptest.NewServer(target.NewServer(target.ServerConfig{Store: tgt, State: tgt, Logger: quietLogger()}).Handler())
	defer srv.Close()
	get := func(t *testing.T, path string, want int) []byte {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("GET %s: %d, want %d: %s", path, resp.StatusCode, want, b)
		}
		return b
	}
	type bundle struct {
		Total int `json:"total"`
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	search := func(t *testing.T, path string) bundle {
		t.Helper()
		var b bundle
		if err := json.Unmarshal(get(t, path, http.StatusOK), &b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The registered patient with the largest record.
	var patient dtm.Change
	size := map[string]int{}
	for _, c := range liveState(t, src) {
		size[c.Patient]++
	}
	for _, p := range liveOf(t, src, "Patient") {
		if p.Member && size[p.ID] > size[patient.ID] {
			patient = p
		}
	}
	t.Run("Read", func(t *testing.T) {
		if got := get(t, "/fhir/Patient/"+patient.ID, http.StatusOK); !bytes.Equal(got, patient.JSON) {
			t.Fatalf("read returned other bytes than the source's")
		}
		get(t, "/fhir/Patient/none", http.StatusNotFound)
	})
	t.Run("SearchNHSNumber", func(t *testing.T) {
		nhs := regexp.MustCompile(`"system":"https://fhir.nhs.uk/Id/nhs-number","value":"(\d+)"`).FindSubmatch(patient.JSON)[1]
		b := search(t, "/fhir/Patient?identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|"+string(nhs)))
		if b.Total != 1 || !bytes.Equal(b.Entry[0].Resource, patient.JSON) {
			t.Fatalf("search by NHS number: %d results", b.Total)
		}
		if b := search(t, "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9999999999"); b.Total != 0 {
			t.Fatalf("unknown NHS number found %d", b.Total)
		}
	})
	t.Run("Everything", func(t *testing.T) {
		want := 0
		for _, c := range liveState(t, src) {
			if c.Patient == patient.ID {
				want++
			}
		}
		if b := search(t, "/fhir/Patient/"+patient.ID+"/$everything"); b.Total != want || want < 2 {
			t.Fatalf("$everything: %d resources, want %d", b.Total, want)
		}
	})
	t.Run("SearchByPatient", func(t *testing.T) {
		want := map[string]int{}
		for _, c := range liveState(t, src) {
			if c.Patient == patient.ID {
				want[c.Type]++
			}
		}
		obs := search(t, "/fhir/Observation?patient="+patient.ID)
		enc := search(t, "/fhir/Encounter?subject=Patient/"+patient.ID)
		if obs.Total != want["Observation"] || enc.Total != want["Encounter"] || want["Encounter"] == 0 {
			t.Fatalf("Observation %d, Encounter %d; want %d, %d", obs.Total, enc.Total, want["Observation"], want["Encounter"])
		}
	})
	t.Run("Status", func(t *testing.T) {
		var st target.Status
		if err := json.Unmarshal(get(t, "/dtm/v1/target/practices/"+testODS, http.StatusOK), &st); err != nil {
			t.Fatal(err)
		}
		if st.T1 != "ok" || st.T2 != "ok" || st.DataAsOf == "" || len(st.Pulls) == 0 || st.Counts["Patient"] == 0 {
			t.Fatalf("status %+v", st)
		}
	})
	t.Run("ErrReadOnly", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/fhir/Patient", "application/fhir+json", bytes.NewReader([]byte(`{}`)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("POST accepted: %d", resp.StatusCode)
		}
	})
}
