package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
)

// startTargetServe runs "dtm target serve" in-process on a free loopback
// port and returns its base URL.
func startTargetServe(t *testing.T, db string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	e := &env{stdout: io.Discard, stderr: io.Discard, logLevel: "error"}
	go func() { done <- runTargetServe(ctx, e, targetServeOptions{db: db, addr: "127.0.0.1:0"}, ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("target serve: %v", err)
		}
	})
	select {
	case url := <-ready:
		return url
	case err := <-done:
		t.Fatalf("target serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("target serve did not start")
	}
	return ""
}

func TestTarget_PullServe(t *testing.T) {
	base := startSource(t)
	do(t, "POST", base+"/dtm/v1/practices", "application/json", `{"ods":"A81001","name":"Test practice"}`, http.StatusCreated)
	var ndjson bytes.Buffer
	err := synth.Generate(t.Context(), synth.Options{Practice: "A81001", Patients: 3, Seed: 1}, func(_ string, b []byte) error {
		ndjson.Write(b)
		ndjson.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	do(t, "POST", base+"/dtm/v1/practices/A81001/ingest", "application/fhir+ndjson", ndjson.String(), http.StatusOK)
	n := bytes.Count(ndjson.Bytes(), []byte("\n"))
	db := "sqlite:" + filepath.Join(t.TempDir(), "t.db")
	pull := []string{"target", "pull", "--source", base, "--practice", "A81001", "--db", db, "--progress", "never",
		"--log-level", "error", "--min-backoff", "5ms", "--max-retry-after", "50ms"}

	t.Run("Pull", func(t *testing.T) {
		var out, errs bytes.Buffer
		if code := Run(t.Context(), pull, nil, &out, &errs); code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out.String(), errs.String())
		}
		for _, want := range []string{": complete", "initial extract", "T1", " 0 quarantined"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("summary lacks %q:\n%s", want, out.String())
			}
		}
		if !strings.Contains(out.String(), "resources    "+strconv.Itoa(n)+" received") {
			t.Fatalf("summary does not count %d resources:\n%s", n, out.String())
		}
	})
	t.Run("Serve", func(t *testing.T) {
		api := startTargetServe(t, db)
		var st struct {
			T1, T2   string
			DataAsOf string
			Counts   map[string]int64
		}
		if err := json.Unmarshal(do(t, "GET", api+"/dtm/v1/target/practices/A81001", "", "", http.StatusOK), &st); err != nil {
			t.Fatal(err)
		}
		if st.T1 != "ok" || st.T2 != "ok" || st.Counts["Patient"] != 3 {
			t.Fatalf("status %+v", st)
		}
		m := do(t, "GET", api+"/metrics", "", "", http.StatusOK)
		if !bytes.Contains(m, []byte(`dtm_target_sla_ok{practice="A81001",requirement="T1"} 1`)) {
			t.Fatalf("metrics lack T1 ok:\n%s", m)
		}
		b := do(t, "GET", api+"/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|0000000000", "", "", http.StatusOK)
		if !bytes.Contains(b, []byte(`"total":0`)) {
			t.Fatalf("search: %s", b)
		}
	})
	t.Run("ErrUsage", func(t *testing.T) {
		for _, args := range [][]string{
			{"target", "pull", "--practice", "A81001"},
			{"target", "pull", "--source", base, "--practice", "nope"},
			{"target", "run", "--source", base, "--practice", "A81001", "--every", "200h"},
			{"target", "run", "--source", base, "--practice", "A81001", "--at", "25:00"},
		} {
			if code := Run(t.Context(), args, nil, io.Discard, io.Discard); code != exitUsage {
				t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
			}
		}
	})
}

// TestTarget_PullSinks pulls with both sinks from the command line: the
// NDJSON staging directory gets one complete batch holding every resource,
// and the FHIR server a PUT for each.
func TestTarget_PullSinks(t *testing.T) {
	base := startSource(t)
	do(t, "POST", base+"/dtm/v1/practices", "application/json", `{"ods":"A81001","name":"Test practice"}`, http.StatusCreated)
	var ndjson bytes.Buffer
	err := synth.Generate(t.Context(), synth.Options{Practice: "A81001", Patients: 2, Seed: 3}, func(_ string, b []byte) error {
		ndjson.Write(b)
		ndjson.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	do(t, "POST", base+"/dtm/v1/practices/A81001/ingest", "application/fhir+ndjson", ndjson.String(), http.StatusOK)
	n := bytes.Count(ndjson.Bytes(), []byte("\n"))

	var mu sync.Mutex
	puts := map[string]bool{}
	fhirSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Type  string `json:"type"`
			Entry []struct {
				Request struct{ Method, URL string } `json:"request"`
			} `json:"entry"`
		}
		if r.URL.Path != "/fhir" || r.Header.Get("Authorization") != "Bearer s3cret" ||
			json.NewDecoder(r.Body).Decode(&b) != nil || b.Type != "transaction" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range b.Entry {
			puts[e.Request.Method+" "+e.Request.URL] = true
		}
		w.Write([]byte(`{"resourceType":"Bundle","type":"transaction-response"}`))
	}))
	defer fhirSrv.Close()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(dir, "staging")
	args := []string{"target", "pull", "--source", base, "--practice", "A81001", "--db", "sqlite:" + filepath.Join(dir, "t.db"),
		"--progress", "never", "--log-level", "error", "--min-backoff", "5ms", "--max-retry-after", "50ms",
		"--sink", "ndjson=" + staging, "--sink", "fhir=" + fhirSrv.URL + "/fhir", "--sink-token-file", token, "--sink-batch-size", "25"}
	var out, errs bytes.Buffer
	if code := Run(t.Context(), args, nil, &out, &errs); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errs.String())
	}
	batches, err := filepath.Glob(filepath.Join(staging, "A81001", "*", "manifest.json"))
	if err != nil || len(batches) != 1 {
		t.Fatalf("batches %v, %v", batches, err)
	}
	var m target.NDJSONManifest
	if b, err := os.ReadFile(batches[0]); err != nil || json.Unmarshal(b, &m) != nil {
		t.Fatalf("manifest: %v", err)
	}
	var staged int64
	for _, f := range m.Output {
		staged += f.Count
	}
	if staged != int64(n) || len(puts) != n {
		t.Fatalf("%d resources at the source; staged %d, PUT %d", n, staged, len(puts))
	}

	bad := append(args[:len(args):len(args)], "--sink", "s3=bucket")
	if code := Run(t.Context(), bad, nil, io.Discard, io.Discard); code != exitUsage {
		t.Fatalf("--sink s3=bucket: exit %d, want %d", code, exitUsage)
	}
}
