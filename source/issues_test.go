package source_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/storetest"
)

const testODS = "A81001"

// Principals the tests act as, chosen by the X-Test-As header.
var testPrincipals = map[string]dtm.Principal{
	"tss":     {Client: "tss-b", Practices: []string{testODS}},
	"other":   {Client: "tss-c", Practices: []string{"B82002"}},
	"sss":     {Client: "sss-ingest", Practices: []string{testODS}, Ingest: true},
	"sss-b":   {Client: "sss-other", Practices: []string{"B82002"}, Ingest: true},
	"authoff": {Practices: []string{dtm.AllPractices}, Ingest: true, Admin: true},
}

// issueEnv is a source serving the issue and digest endpoints over a real
// SQLite store on loopback, with a manual clock.
type issueEnv struct {
	db    *sqlite.DB
	url   string
	clock *storetest.Clock
}

func newIssueEnv(tb testing.TB) *issueEnv {
	tb.Helper()
	e := &issueEnv{clock: storetest.NewClock(time.Date(2026, 3, 27, 16, 0, 0, 0, time.UTC))} // Friday 16:00
	var err error
	e.db, err = sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "source.db"),
		sqlite.Options{Clock: e.clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.db.Close() })
	for _, ods := range []string{testODS, "B82002"} {
		if _, err := e.db.CreatePractice(context.Background(), dtm.Practice{ODS: ods}); err != nil {
			tb.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	h := &source.Handler{Store: e.db, Clock: e.clock, Logger: slog.New(slog.DiscardHandler)}
	h.IssueRoutes(mux)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := testPrincipals[r.Header.Get("X-Test-As")]
		if ok {
			r = r.WithContext(dtm.NewContextWithPrincipal(r.Context(), p))
		}
		mux.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// do sends a request as principal `as` and returns the status and body.
func (e *issueEnv) do(tb testing.TB, as, method, path string, body any) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("X-Test-As", as)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// issue sends a request that must answer want and decodes the issue.
func (e *issueEnv) issue(tb testing.TB, as, method, path string, body any, want int) source.IssueJSON {
	tb.Helper()
	status, b := e.do(tb, as, method, path, body)
	if status != want {
		tb.Fatalf("%s %s as %s: %d %s, want %d", method, path, as, status, b, want)
	}
	var i source.IssueJSON
	if err := json.Unmarshal(b, &i); err != nil {
		tb.Fatal(err)
	}
	return i
}

// wantOutcome checks a refused request answers status with an
// OperationOutcome.
func wantOutcome(tb testing.TB, status int, body []byte, want int) {
	tb.Helper()
	if status != want || !bytes.Contains(body, []byte(`"resourceType":"OperationOutcome"`)) {
		tb.Fatalf("got %d %s, want %d with an OperationOutcome", status, body, want)
	}
}

const issuesPath = "/dtm/v1/practices/" + testODS + "/issues"

var testRaise = source.RaiseRequest{
	Severity: "error", Category: dtm.IssueValidation, Rule: "nhs-number-check-digit", Key: "auto:validation:nhs-number-check-digit",
	Title: "NHS number check digit wrong", Resources: []string{"Patient/p2", "Patient/p1"},
	Outcome: json.RawMessage(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"value","diagnostics":"nhs-number-check-digit: wrong check digit"}]}`),
}

func TestIssueServer(t *testing.T) {
	e := newIssueEnv(t)
	i := e.issue(t, "tss", "POST", issuesPath, testRaise, http.StatusCreated)
	if i.Status != dtm.IssueOpen || i.RaisedBy != "tss-b" || strings.Join(i.Resources, ",") != "Patient/p1,Patient/p2" ||
		i.ResourceCount != 2 || len(i.History) != 1 || i.WaitingOn != "source" || i.Overdue {
		t.Fatalf("raised %+v", i)
	}
	if i.Due != "2026-03-30T15:00:00.000000Z" { // Monday 16:00 BST
		t.Errorf("due %s, want Monday 16:00 in London", i.Due)
	}
	path := issuesPath + "/" + i.ID

	t.Run("Flow", func(t *testing.T) {
		e.clock.Advance(72 * time.Hour) // Monday 16:00 GMT = 17:00 BST: overdue
		var list source.IssueList
		_, b := e.do(t, "sss", "GET", issuesPath+"?status=active", nil)
		if err := json.Unmarshal(b, &list); err != nil || len(list.Issues) != 1 || list.Overdue != 1 || list.Issues[0].Resources != nil {
			t.Fatalf("list %s (%v)", b, err)
		}
		ack := e.issue(t, "sss", "POST", path+"/acknowledge", source.ActionRequest{Actor: "J Smith"}, http.StatusOK)
		if ack.Status != dtm.IssueAcknowledged || !ack.Late || ack.Overdue || ack.RespondedAt == "" ||
			ack.History[1].Actor != "sss-ingest (J Smith)" || ack.ResponseSeconds != 72*3600 {
			t.Fatalf("acknowledged %+v", ack)
		}
		e.clock.Advance(time.Hour)
		e.issue(t, "sss", "POST", path+"/resolve", source.ActionRequest{Text: "corrected at source"}, http.StatusOK)
		e.issue(t, "tss", "POST", path+"/comment", source.ActionRequest{Text: "will verify after the next pull"}, http.StatusOK)
		closed := e.issue(t, "tss", "POST", path+"/close", nil, http.StatusOK)
		if closed.Status != dtm.IssueClosed || closed.ClosedAt == "" || len(closed.History) != 5 || closed.WaitingOn != "" {
			t.Fatalf("closed %+v", closed)
		}
		got := e.issue(t, "tss", "GET", path, nil, http.StatusOK)
		if got.Status != dtm.IssueClosed || len(got.History) != 5 || got.History[2].Text != "corrected at source" {
			t.Fatalf("read back %+v", got)
		}
		re := e.issue(t, "tss", "POST", path+"/reopen", source.ActionRequest{Text: "still failing"}, http.StatusOK)
		if re.Status != dtm.IssueOpen || re.RespondedAt != "" || re.Due == "" {
			t.Fatalf("reopened %+v", re)
		}
	})
	t.Run("Update", func(t *testing.T) {
		u := e.issue(t, "tss", "POST", path+"/update", source.ActionRequest{Resources: []string{"Patient/p3"}, ResourceCount: 1}, http.StatusOK)
		if strings.Join(u.Resources, ",") != "Patient/p3" || u.ResourceCount != 1 {
			t.Fatalf("updated %+v", u)
		}
		status, b := e.do(t, "tss", "POST", path+"/comment", source.ActionRequest{Text: "x", Resources: []string{"Patient/p4"}})
		wantOutcome(t, status, b, http.StatusBadRequest)
	})
	t.Run("AuditTrail", func(t *testing.T) {
		events, err := e.db.AuditEvents(context.Background(), dtm.AuditQuery{Action: dtm.AuditIssue, Practice: testODS})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) < 6 || events[0].Client != "tss-b" || events[0].Detail != "raise issue "+i.ID {
			t.Fatalf("audit events %+v", events)
		}
	})
	t.Run("ErrForbidden", func(t *testing.T) {
		for _, c := range []struct{ as, method, path string }{
			{"tss", "POST", path + "/acknowledge"},
			{"tss", "POST", path + "/resolve"},
			{"other", "GET", path},
			{"other", "GET", issuesPath},
			{"other", "POST", issuesPath},
			{"other", "POST", path + "/close"},
			{"sss-b", "POST", path + "/acknowledge"},
			{"", "GET", issuesPath},
		} {
			var body any
			if c.method == "POST" {
				body = source.ActionRequest{Text: "x"}
				if c.path == issuesPath {
					body = testRaise
				}
			}
			status, b := e.do(t, c.as, c.method, c.path, body)
			wantOutcome(t, status, b, http.StatusForbidden)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		bad := testRaise
		bad.Key, bad.Severity = "", "catastrophic"
		status, b := e.do(t, "tss", "POST", issuesPath, bad)
		wantOutcome(t, status, b, http.StatusBadRequest)
		status, b = e.do(t, "tss", "POST", issuesPath, map[string]any{"severity": "error", "category": "other", "colour": "red"})
		wantOutcome(t, status, b, http.StatusBadRequest)
		status, b = e.do(t, "sss", "POST", path+"/reject", nil) // no reason given
		wantOutcome(t, status, b, http.StatusBadRequest)
		status, b = e.do(t, "tss", "GET", issuesPath+"?status=pending", nil)
		wantOutcome(t, status, b, http.StatusBadRequest)
	})
	t.Run("ErrConflict", func(t *testing.T) {
		status, b := e.do(t, "tss", "POST", issuesPath, testRaise) // same key, still active
		wantOutcome(t, status, b, http.StatusConflict)
		status, b = e.do(t, "tss", "POST", path+"/reopen", nil) // already open
		wantOutcome(t, status, b, http.StatusConflict)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, p := range []string{issuesPath + "/999", issuesPath + "/abc", "/dtm/v1/practices/Z99999/issues"} {
			status, b := e.do(t, "authoff", "GET", p, nil)
			wantOutcome(t, status, b, http.StatusNotFound)
		}
		status, b := e.do(t, "tss", "POST", path+"/frobnicate", nil)
		wantOutcome(t, status, b, http.StatusNotFound)
	})
	t.Run("AuthOff", func(t *testing.T) {
		r := testRaise
		r.Key, r.Actor = "", "Dr A Person"
		i := e.issue(t, "authoff", "POST", issuesPath, r, http.StatusCreated)
		if i.RaisedBy != "Dr A Person" {
			t.Fatalf("raised by %q", i.RaisedBy)
		}
		e.issue(t, "authoff", "POST", issuesPath+"/"+i.ID+"/acknowledge", nil, http.StatusOK)
	})
}

func TestIssueServer_ErrNotSupported(t *testing.T) {
	mux := http.NewServeMux()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	(&source.IssueServer{Store: db}).Routes(mux)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", issuesPath, nil)
	mux.ServeHTTP(rec, req.WithContext(dtm.NewContextWithPrincipal(req.Context(), testPrincipals["authoff"])))
	wantOutcome(t, rec.Code, rec.Body.Bytes(), http.StatusNotImplemented)
}
