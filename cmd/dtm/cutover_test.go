package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm/cutover"
	"github.com/dtm-project/dtm/synth"
)

// startSourceAt runs "dtm source serve --auth none" on the SQLite store at
// path and returns its base URL.
func startSourceAt(t *testing.T, path string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	e := &env{stdout: io.Discard, stderr: io.Discard, logLevel: "error"}
	go func() {
		done <- runSourceServe(ctx, e, sourceServeOptions{db: "sqlite:" + path, addr: "127.0.0.1:0", auth: "none"}, ready)
	}()
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

// dtmRun runs the command line and returns its exit code and output.
func dtmRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := Run(t.Context(), append(args, "--log-level", "error"), nil, &out, &errs)
	return code, out.String() + errs.String()
}

func TestCutover_CLI(t *testing.T) {
	dir := t.TempDir()
	srcPath := filepath.Join(dir, "s.db")
	base := startSourceAt(t, srcPath)
	do(t, "POST", base+"/dtm/v1/practices", "application/json", `{"ods":"A81001","name":"Test practice"}`, http.StatusCreated)
	ingest := func(patients int) {
		var ndjson bytes.Buffer
		err := synth.Generate(t.Context(), synth.Options{Practice: "A81001", Patients: patients, Seed: 1}, func(_ string, b []byte) error {
			ndjson.Write(b)
			ndjson.WriteByte('\n')
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		do(t, "POST", base+"/dtm/v1/practices/A81001/ingest", "application/fhir+ndjson", ndjson.String(), http.StatusOK)
		do(t, "PUT", base+"/dtm/v1/practices/A81001/watermark", "application/json",
			`{"completeAsOf":"`+time.Now().UTC().Format(time.RFC3339)+`"}`, http.StatusNoContent)
	}
	ingest(3)
	db := "sqlite:" + filepath.Join(dir, "t.db")
	common := []string{"--db", db, "--practice", "A81001"}
	runFlags := append([]string{"--source-db", "sqlite:" + srcPath, "--by", "Olu Operator", "--progress", "never",
		"--min-backoff", "5ms", "--max-retry-after", "50ms"}, common...)
	pull := func() {
		t.Helper()
		code, out := dtmRun(t, "target", "pull", "--source", base, "--practice", "A81001", "--db", db, "--progress", "never",
			"--min-backoff", "5ms", "--max-retry-after", "50ms")
		if code != exitOK {
			t.Fatalf("pull: exit %d\n%s", code, out)
		}
	}
	date := cutover.EarliestDate(time.Now().Add(7 * 24 * time.Hour))

	t.Run("Plan", func(t *testing.T) {
		code, out := dtmRun(t, append([]string{"cutover", "plan", "--source-supplier", "Old Systems Ltd", "--target-supplier", "New Systems plc",
			"--source", base, "--date", date, "--by", "Pat Planner"}, common...)...)
		if code != exitOK || !strings.Contains(out, "plan A81001-"+date+": active") || !strings.Contains(out, "17:00") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("ErrPlanNotFriday", func(t *testing.T) {
		thursday := time.Now().AddDate(0, 2, 0)
		for thursday.Weekday() != time.Thursday {
			thursday = thursday.AddDate(0, 0, 1)
		}
		code, out := dtmRun(t, append([]string{"cutover", "plan", "--source-supplier", "a", "--target-supplier", "b",
			"--source", base, "--date", thursday.Format(time.DateOnly), "--replace"}, common...)...)
		if code != exitFailure || !strings.Contains(out, "Thursday") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	pull()
	t.Run("ReadinessNotYet", func(t *testing.T) {
		code, out := dtmRun(t, append([]string{"cutover", "readiness"}, common...)...)
		if code != exitFindings || !strings.Contains(out, "NOT READY") || !strings.Contains(out, "prediction") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("Rehearse", func(t *testing.T) {
		code, out := dtmRun(t, append([]string{"cutover", "rehearse"}, runFlags...)...)
		if code != exitOK || !strings.Contains(out, "rehearsed") || !strings.Contains(out, "match=true") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	ingest(4) // one more patient: a delta
	pull()
	t.Run("ReadinessAndConfirm", func(t *testing.T) {
		code, out := dtmRun(t, append([]string{"cutover", "readiness", "--json", "--source-db", "sqlite:" + srcPath}, common...)...)
		if code != exitOK || !strings.Contains(out, `"ready": true`) {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, role := range []string{"target", "source-statement", "target-statement"} {
			code, out := dtmRun(t, append([]string{"cutover", "confirm", "--role", role, "--name", "Jo Bloggs",
				"--position", "Migration lead", "--organisation", "New Systems plc"}, common...)...)
			if code != exitOK || !strings.Contains(out, "recorded") {
				t.Fatalf("confirm %s: exit %d\n%s", role, code, out)
			}
		}
	})
	t.Run("ErrRunBeforeWindow", func(t *testing.T) {
		code, out := dtmRun(t, append([]string{"cutover", "run"}, runFlags...)...)
		if code != exitFailure || !strings.Contains(out, "window opens") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	// Without --source-db, readiness and the evidence report read the data
	// issue log over the source's API at the plan's URL: an open error issue
	// raised there must block readiness and appear in the report.
	code, out := dtmRun(t, "issues", "raise", "--source", base, "--practice", "A81001", "--severity", "error",
		"--category", "validation", "--rule", "test-rule-over-api", "--title", "raised over the API", "--resource", "Patient/p1")
	if code != exitOK {
		t.Fatalf("raise: exit %d\n%s", code, out)
	}
	t.Run("ReadinessReadsIssuesOverAPI", func(t *testing.T) {
		code, out := dtmRun(t, append([]string{"cutover", "readiness"}, common...)...)
		if code != exitFindings || !strings.Contains(out, "1 error or fatal data issues are not closed") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("ReportEvidence", func(t *testing.T) {
		out := filepath.Join(dir, "evidence")
		code, text := dtmRun(t, "report", "evidence", "--db", db, "--out", out,
			"--openapi", "../../docs/openapi.yaml", "--pdf", "never")
		if code != exitOK || !strings.Contains(text, "index.html") || !strings.Contains(text, "requirements:") {
			t.Fatalf("exit %d\n%s", code, text)
		}
		page, err := os.ReadFile(filepath.Join(out, "index.html"))
		if err != nil || !bytes.Contains(page, []byte(`data-req="A4"`)) || !bytes.Contains(page, []byte("FHIR 4.0.1")) {
			t.Fatalf("report: %v", err)
		}
		if !bytes.Contains(page, []byte("test-rule-over-api")) {
			t.Error("the report lacks the data issue raised over the API")
		}
	})
	t.Run("Status", func(t *testing.T) {
		code, out := dtmRun(t, append([]string{"cutover", "status"}, common...)...)
		for _, want := range []string{"seal ok", "source-statement", "rehearsal", "reconcile", "DURATION"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q", want)
			}
		}
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
}
