package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startSource runs "dtm source serve" in-process on a free loopback port and
// returns its base URL.
func startSource(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	e := &env{stdout: io.Discard, stderr: io.Discard, logLevel: "error"}
	o := sourceServeOptions{db: "sqlite:" + filepath.Join(t.TempDir(), "s.db"), addr: "127.0.0.1:0", auth: "none"}
	go func() { done <- runSourceServe(ctx, e, o, ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case url := <-ready:
		return url
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	return ""
}

func do(t *testing.T, method, url, contentType, body string, want int) []byte {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Prefer", "respond-async")
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, b)
	}
	if method == http.MethodGet && strings.Contains(url, "$export") {
		return []byte(resp.Header.Get("Content-Location"))
	}
	return b
}

func TestSourceServe_IngestStatusExport(t *testing.T) {
	base := startSource(t)
	do(t, "POST", base+"/dtm/v1/practices", "application/json", `{"ods":"A81001","name":"Test practice"}`, http.StatusCreated)
	ndjson := `{"resourceType":"Patient","id":"p1","active":true}` + "\n" +
		`{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":5.60}}` + "\n"
	do(t, "POST", base+"/dtm/v1/practices/A81001/ingest", "application/fhir+ndjson", ndjson, http.StatusOK)
	// Retrying the same push is harmless.
	again := do(t, "POST", base+"/dtm/v1/practices/A81001/ingest", "application/fhir+ndjson", ndjson, http.StatusOK)
	if !bytes.Contains(again, []byte(`"applied": 0`)) {
		t.Errorf("retried ingest applied something: %s", again)
	}
	do(t, "PUT", base+"/dtm/v1/practices/A81001/watermark", "application/json", `{"completeAsOf":"`+time.Now().UTC().Format(time.RFC3339)+`"}`, http.StatusNoContent)
	var st struct {
		Freshness string           `json:"freshness"`
		Counts    map[string]int64 `json:"counts"`
	}
	if err := json.Unmarshal(do(t, "GET", base+"/dtm/v1/practices/A81001/status", "", "", http.StatusOK), &st); err != nil {
		t.Fatal(err)
	}
	if st.Freshness != "ok" || st.Counts["Patient"] != 1 || st.Counts["Observation"] != 1 {
		t.Errorf("status %+v, want ok with one Patient and one Observation", st)
	}
	do(t, "GET", base+"/dtm/v1/practices/ZZZ99/status", "", "", http.StatusNotFound)
	do(t, "POST", base+"/dtm/v1/practices/A81001/ingest", "application/fhir+ndjson", `{"resourceType":"Patient"}`, http.StatusBadRequest)

	status := string(do(t, "GET", base+"/fhir/Group/A81001/$export?_outputFormat=ndjson", "", "", http.StatusAccepted))
	var manifest struct {
		Output []struct{ Type, URL string } `json:"output"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(status)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &manifest); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("export not ready: %d %s", resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var got []string
	for _, o := range manifest.Output {
		got = append(got, strings.TrimSpace(string(do(t, "GET", o.URL, "", "", http.StatusOK))))
	}
	all := strings.Join(got, "\n")
	if !strings.Contains(all, `"value":5.60`) || !strings.Contains(all, `"id":"p1"`) {
		t.Errorf("export output lacks the ingested records: %s", all)
	}
	page := string(do(t, "GET", base+"/", "", "", http.StatusOK))
	if !strings.Contains(page, "A81001") || !strings.Contains(page, "<html") {
		t.Errorf("the dashboard at / does not show the practice")
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte(`dtm_source_freshness_state{practice="A81001",state="ok"} 1`)) {
		t.Errorf("metrics lack the practice's freshness state")
	}
}
