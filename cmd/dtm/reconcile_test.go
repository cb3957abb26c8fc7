package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/bulk"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
)

// startIssueSource serves a generated practice of three patients, the
// first with a wrong NHS number check digit, with the Bulk Data server, the
// control plane and the issue and digest endpoints, authentication off.
func startIssueSource(t *testing.T) (url, invalid string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.CreatePractice(ctx, dtm.Practice{ODS: "A81001"}); err != nil {
		t.Fatal(err)
	}
	nhs := regexp.MustCompile(`("https://fhir.nhs.uk/Id/nhs-number","value":"\d{9})(\d)"`)
	var ws []dtm.Write
	err = synth.Generate(ctx, synth.Options{Practice: "A81001", Patients: 3, Seed: 1}, func(typ string, b []byte) error {
		h, _ := fhir.ParseHeader(b)
		b = bytes.Clone(b)
		if typ == "Patient" && invalid == "" {
			invalid = h.ID
			b = nhs.ReplaceAllFunc(b, func(m []byte) []byte {
				m[len(m)-2] = '0' + (m[len(m)-2]-'0'+1)%10
				return m
			})
		}
		p, _ := fhir.Compartment(typ, b)
		ws = append(ws, dtm.Write{Type: typ, ID: h.ID, JSON: b, Patient: p, Member: typ == "Patient" && fhir.PatientActive(b)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Apply(ctx, "A81001", ws); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h := &source.Handler{Store: db, Clock: dtm.SystemClock{}, Logger: slog.New(slog.DiscardHandler)}
	h.Routes(mux)
	h.IssueRoutes(mux)
	srv := httptest.NewServer(nil)
	bs := bulk.NewServer(bulk.Config{Journal: db, Practices: db, Jobs: db, BaseURL: srv.URL, Logger: slog.New(slog.DiscardHandler),
		Caller: func(r *http.Request) (string, []string) { return "", []string{dtm.AllPractices} }})
	mux.Handle("/fhir/", bs.Handler())
	srv.Config.Handler = auth.AllowAll(mux)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { bs.Run(ctx); close(done) }()
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return srv.URL, invalid
}

// run runs the dtm command line and returns its exit code and output.
func run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := Run(t.Context(), append(args, "--log-level", "error"), nil, &out, &errs)
	return code, out.String() + errs.String()
}

func TestTarget_Reconcile(t *testing.T) {
	base, invalid := startIssueSource(t)
	path := filepath.Join(t.TempDir(), "t.db")
	db := "sqlite:" + path
	if code, out := run(t, "target", "pull", "--source", base, "--practice", "A81001", "--db", db, "--progress", "never",
		"--min-backoff", "5ms", "--max-retry-after", "50ms"); code != exitFindings || !strings.Contains(out, "1 quarantined") {
		t.Fatalf("pull: exit %d\n%s", code, out)
	}
	reconcile := []string{"target", "reconcile", "--source", base, "--practice", "A81001", "--db", db}

	t.Run("Accounted", func(t *testing.T) {
		dir := t.TempDir()
		code, out := run(t, append(reconcile, "--out", dir)...)
		if code != exitOK || !strings.Contains(out, "ACCOUNTED") || !strings.Contains(out, "quarantined Patient/"+invalid) {
			t.Fatalf("exit %d\n%s", code, out)
		}
		md, err := os.ReadFile(filepath.Join(dir, "report.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"## Initial extract", "invalid: nhs-number-check-digit | 1", "| quarantined | 1 |", "ACCOUNTED"} {
			if !strings.Contains(string(md), want) {
				t.Errorf("report.md lacks %q:\n%s", want, md)
			}
		}
		var in target.Integrity
		b, _ := os.ReadFile(filepath.Join(dir, "report.json"))
		if err := json.Unmarshal(b, &in); err != nil || in.InitialExtract == nil || in.InitialExtract.Counts.Quarantined != 1 ||
			in.Reconciliation == nil || in.Reconciliation.Result != target.ReconcileAccounted {
			t.Fatalf("report.json: %v\n%s", err, b)
		}
	})
	t.Run("Mismatch", func(t *testing.T) {
		st, err := sqlite.Open(t.Context(), path, sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Apply(t.Context(), "A81001", []dtm.Write{{Type: "Organization", ID: "org-A81001", Op: dtm.OpDelete}}); err != nil {
			t.Fatal(err)
		}
		st.Close()
		code, out := run(t, reconcile...)
		if code != exitFindings || !strings.Contains(out, "MISMATCH") || !strings.Contains(out, "missing     Organization/org-A81001") ||
			!strings.Contains(out, "target digest advanced from seq") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("ErrUsage", func(t *testing.T) {
		if code, _ := run(t, append(reconcile, "--at", "yesterday")...); code != exitUsage {
			t.Errorf("--at yesterday: exit %d", code)
		}
		if code, _ := run(t, "target", "reconcile", "--practice", "A81001", "--db", db); code != exitUsage {
			t.Errorf("no --source: exit %d", code)
		}
	})
}

func TestIssues(t *testing.T) {
	base, _ := startIssueSource(t)
	flags := []string{"--source", base, "--practice", "A81001", "--min-backoff", "5ms"}
	code, out := run(t, append([]string{"issues", "raise", "--category", "other", "--title", "Letters missing",
		"--resource", "DocumentReference/doc-1", "--resource", "DocumentReference/doc-2", "--actor", "Dr Target"}, flags...)...)
	if code != exitOK || !strings.Contains(out, " 1 (A81001)") || !strings.Contains(out, "DocumentReference/doc-2") {
		t.Fatalf("raise: exit %d\n%s", code, out)
	}
	for _, step := range [][]string{
		{"issues", "ack", "1", "--actor", "Source Desk"},
		{"issues", "answer", "1", "--text", "which letters?"},
		{"issues", "comment", "1", "--text", "the scanned ones"},
		{"issues", "resolve", "1", "--text", "re-sent"},
		{"issues", "close", "1"},
	} {
		if code, out := run(t, append(step, flags...)...); code != exitOK {
			t.Fatalf("%v: exit %d\n%s", step, code, out)
		}
	}
	code, out = run(t, append([]string{"issues", "show", "1", "--output", "json"}, flags...)...)
	var i struct {
		Status  string
		History []dtm.IssueEvent
	}
	if err := json.Unmarshal([]byte(out), &i); code != exitOK || err != nil || i.Status != dtm.IssueClosed || len(i.History) != 6 ||
		i.History[0].Actor != "Dr Target" || i.History[1].Actor != "Source Desk" {
		t.Fatalf("show: exit %d %v\n%s", code, err, out)
	}
	code, out = run(t, append([]string{"issues", "list", "--status", "closed"}, flags...)...)
	if code != exitOK || !strings.Contains(out, "Letters missing") || !strings.Contains(out, "1 issues, 0 overdue") {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if code, out := run(t, append([]string{"issues", "reject", "1", "--text", "no"}, flags...)...); code != exitFailure || !strings.Contains(out, "closed") {
		t.Fatalf("rejecting a closed issue: exit %d\n%s", code, out)
	}
	if code, _ := run(t, "issues", "list", "--practice", "A81001"); code != exitUsage {
		t.Fatalf("no --source: exit %d", code)
	}
}
