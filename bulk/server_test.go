package bulk

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/storetest"
)

// testStore is what the server needs of a store.
type testStore interface {
	dtm.Store
	dtm.ExportJobs
}

// testEnv is a real server on loopback over a real store.
type testEnv struct {
	tb  testing.TB
	db  testStore
	srv *Server
	hs  *httptest.Server
	ctx context.Context
}

// clientHeader names the test client of a request (see newTestEnv).
const clientHeader = "X-Test-Client"

// newTestEnv opens a SQLite store in a temporary directory and serves it
// (see newStoreEnv).
func newTestEnv(tb testing.TB, workers bool, configure func(*Config)) *testEnv {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "dtm.db"), sqlite.Options{Logger: discardLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return newStoreEnv(tb, db, workers, configure)
}

// newStoreEnv registers PracticeA and PracticeB in the empty store db and
// serves it; configure adjusts the Config. With workers, the job workers
// run until the test ends.
func newStoreEnv(tb testing.TB, db testStore, workers bool, configure func(*Config)) *testEnv {
	tb.Helper()
	ctx := context.Background()
	for _, ods := range []string{storetest.PracticeA, storetest.PracticeB} {
		if _, err := db.CreatePractice(ctx, dtm.Practice{ODS: ods, Name: ods}); err != nil {
			tb.Fatal(err)
		}
	}
	hs := httptest.NewUnstartedServer(nil)
	cfg := Config{
		Journal: db, Practices: db, Jobs: db, BaseURL: "http://" + hs.Listener.Addr().String(),
		Logger: discardLogger(), Workers: 2,
		Caller: func(r *http.Request) (string, []string) {
			return r.Header.Get(clientHeader), []string{dtm.AllPractices}
		},
	}
	if configure != nil {
		configure(&cfg)
	}
	e := &testEnv{tb: tb, db: db, srv: NewServer(cfg), hs: hs, ctx: ctx}
	hs.Config.Handler = e.srv.Handler()
	hs.Start()
	tb.Cleanup(hs.Close)
	if workers {
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { e.srv.Run(runCtx); close(done) }()
		tb.Cleanup(func() { cancel(); <-done })
	}
	return e
}

// apply commits writes to practice, failing the test on error.
func (e *testEnv) apply(practice string, ws ...dtm.Write) dtm.Commit {
	e.tb.Helper()
	c, err := e.db.Apply(e.ctx, practice, ws)
	if err != nil {
		e.tb.Fatalf("apply: %v", err)
	}
	return c
}

// do sends a request to path (absolute, or relative to the server) with
// the given headers ("Key: value") and returns the response, whose body
// the caller closes.
func (e *testEnv) do(method, path string, body io.Reader, headers ...string) *http.Response {
	e.tb.Helper()
	if !strings.HasPrefix(path, "http") {
		path = e.hs.URL + path
	}
	req, err := http.NewRequestWithContext(e.ctx, method, path, body)
	if err != nil {
		e.tb.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	// Transport decompression off: tests see the bytes on the wire.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	return resp
}

// read returns a response's status and body, closing it.
func read(tb testing.TB, resp *http.Response) (int, []byte) {
	tb.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, b
}

// kickoff starts an export and returns its status URL, failing the test
// unless the answer is 202 with an absolute Content-Location.
func (e *testEnv) kickoff(path string, headers ...string) string {
	e.tb.Helper()
	resp := e.do("GET", path, nil, append([]string{"Prefer: respond-async", "Accept: application/fhir+json"}, headers...)...)
	status, body := read(e.tb, resp)
	loc := resp.Header.Get("Content-Location")
	if status != http.StatusAccepted || !strings.HasPrefix(loc, e.hs.URL+"/fhir/") {
		e.tb.Fatalf("kick-off %s: %d %s, Content-Location %q", path, status, body, loc)
	}
	return loc
}

// wait polls a status URL until the export completes and returns the
// manifest.
func (e *testEnv) wait(statusURL string, headers ...string) manifest {
	e.tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp := e.do("GET", statusURL, nil, headers...)
		status, body := read(e.tb, resp)
		switch status {
		case http.StatusAccepted:
			if resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-Progress") == "" {
				e.tb.Fatalf("202 without Retry-After or X-Progress: %v", resp.Header)
			}
			time.Sleep(2 * time.Millisecond)
			continue
		case http.StatusOK:
			if resp.Header.Get("Expires") == "" {
				e.tb.Fatal("manifest without Expires")
			}
			var m manifest
			if err := json.Unmarshal(body, &m); err != nil {
				e.tb.Fatalf("manifest: %v: %s", err, body)
			}
			return m
		default:
			e.tb.Fatalf("status: %d %s", status, body)
		}
	}
	e.tb.Fatal("export did not complete in time")
	return manifest{}
}

// download returns the decompressed bytes of an export file.
func (e *testEnv) download(url string, gz bool, headers ...string) []byte {
	e.tb.Helper()
	if gz {
		headers = append(headers, "Accept-Encoding: gzip")
	}
	resp := e.do("GET", url, nil, headers...)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/fhir+ndjson" {
		b, _ := io.ReadAll(resp.Body)
		e.tb.Fatalf("download %s: %d %s", url, resp.StatusCode, b)
	}
	var r io.Reader = resp.Body
	if gz {
		if resp.Header.Get("Content-Encoding") != "gzip" {
			e.tb.Fatal("gzip accepted but not used")
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			e.tb.Fatal(err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		e.tb.Fatalf("download %s: %v", url, err)
	}
	return b
}

// wantOutcome fails the test unless resp has status and an
// OperationOutcome body whose diagnostics contain substr.
func wantOutcome(tb testing.TB, resp *http.Response, status int, substr string) {
	tb.Helper()
	got, body := read(tb, resp)
	var oo outcome
	if got != status || json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" ||
		len(oo.Issue) == 0 || !strings.Contains(oo.Issue[0].Diagnostics, substr) {
		tb.Fatalf("got %d %s, want %d OperationOutcome mentioning %q", got, body, status, substr)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/fhir+json" {
		tb.Fatalf("Content-Type %q", ct)
	}
}
