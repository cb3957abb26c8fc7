package cutover_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/cutover"
	"github.com/dtm-project/dtm/storetest"
)

// facts returns the facts of a healthy practice: the plan of 2026-03-27,
// assessed on 2026-03-10, weekly delta pulls for four weeks after an
// initial extract, a matching reconciliation and no data issues.
func facts() cutover.Facts {
	now := utc("2026-03-10T10:00:00Z")
	p, err := cutover.NewPlan(planRequest("2026-03-27"), utc("2026-02-01T10:00:00Z"))
	if err != nil {
		panic(err)
	}
	f := cutover.Facts{Plan: p, Now: now, Since: now.Add(-28 * 24 * time.Hour), IssuesKnown: true}
	for i := 5; i >= 0; i-- {
		start := now.Add(-time.Duration(i)*7*24*time.Hour - time.Hour)
		pr := dtm.PullRecord{ID: fmt.Sprint("p", i), Practice: testODS, Status: dtm.PullComplete,
			Since: start.Add(-7 * 24 * time.Hour), TransactionTime: start.Add(-time.Minute),
			SourceFreshness: dtm.FreshOK, SourceLag: 20 * time.Minute,
			StartedAt: start, AvailableAt: start.Add(2 * time.Second), FinishedAt: start.Add(10 * time.Second),
			Counts: dtm.PullCounts{Received: 5000, Applied: 5000}}
		if i == 5 {
			pr.Since = time.Time{} // the initial extract
			pr.Counts = dtm.PullCounts{Received: 500_000, Applied: 500_000}
			pr.FinishedAt = start.Add(time.Minute)
		}
		f.Pulls = append(f.Pulls, pr)
	}
	f.Reconciles = []dtm.ReconcileSummary{{Practice: testODS, Method: "journal", At: now.Add(-time.Hour), Duration: 3 * time.Second,
		SourceTotal: 520_000, TargetTotal: 520_000, Match: true}}
	return f
}

func checkOf(r cutover.Report, id string) cutover.Check {
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	panic("no check " + id)
}

func TestAssess(t *testing.T) {
	t.Run("Ready", func(t *testing.T) {
		r := cutover.Assess(facts(), cutover.Options{})
		for _, c := range r.Checks {
			if c.Status != cutover.Pass {
				t.Errorf("%s = %s: %s", c.ID, c.Status, c.Summary)
			}
			if len(c.Evidence) == 0 {
				t.Errorf("%s has no evidence", c.ID)
			}
		}
		if !r.Ready || !r.Prediction.Measured || r.Prediction.WeeklyChanges != 5000 || r.Prediction.Share > 0.01 {
			t.Errorf("report: ready %v, prediction %+v", r.Ready, r.Prediction)
		}
		var buf bytes.Buffer
		if err := r.WriteText(&buf); err != nil || !strings.Contains(buf.String(), "READY") || !strings.Contains(buf.String(), "62 h") {
			t.Errorf("text = %s, %v", buf.String(), err)
		}
		var back cutover.Report
		if err := json.Unmarshal(r.JSON(), &back); err != nil || len(back.Checks) != len(r.Checks) {
			t.Errorf("JSON round trip: %v", err)
		}
	})
	for _, tc := range []struct {
		name, check, status string
		blocks              bool
		edit                func(*cutover.Facts)
	}{
		{"DeadlinePassed", "deadline", cutover.Fail, true, func(f *cutover.Facts) { f.Now = f.Plan.ReadinessDeadline.Add(time.Second) }},
		{"NoPulls", "auth", cutover.Fail, true, func(f *cutover.Facts) { f.Pulls = nil }},
		{"Refused", "auth", cutover.Fail, true, func(f *cutover.Facts) {
			f.Pulls = append(f.Pulls, dtm.PullRecord{ID: "x", Status: dtm.PullFailed, StartedAt: f.Now.Add(-time.Minute), Error: "source answered 401 Unauthorized"})
		}},
		{"FreshnessWarn", "freshness", cutover.Warn, false, func(f *cutover.Facts) { f.Pulls[3].SourceLag = 7 * time.Hour }},
		{"FreshnessBreach", "freshness", cutover.Fail, true, func(f *cutover.Facts) { f.Pulls[3].SourceLag = 13 * time.Hour }},
		{"FreshnessNoEvidence", "freshness", cutover.Warn, false, func(f *cutover.Facts) {
			for i := range f.Pulls {
				f.Pulls[i].SourceFreshness = ""
			}
		}},
		{"WeeklyGap", "weekly", cutover.Fail, true, func(f *cutover.Facts) { f.Pulls = append(f.Pulls[:2], f.Pulls[3:]...) }},
		{"ConsumeLate", "consume", cutover.Fail, true, func(f *cutover.Facts) { f.Pulls[4].FinishedAt = f.Pulls[4].AvailableAt.Add(7 * time.Hour) }},
		{"ValidationWarn", "validation", cutover.Warn, false, func(f *cutover.Facts) { f.Pulls[4].Counts.Quarantined = 3 }},
		{"ValidationFail", "validation", cutover.Fail, true, func(f *cutover.Facts) { f.Pulls[4].Counts.Quarantined = 4000 }},
		{"IssueOpen", "issues", cutover.Fail, true, func(f *cutover.Facts) {
			f.Issues = []dtm.DataIssue{{ID: "1", Status: dtm.IssueOpen, Severity: "error"}}
		}},
		{"IssueWarning", "issues", cutover.Warn, false, func(f *cutover.Facts) {
			f.Issues = []dtm.DataIssue{{ID: "1", Status: dtm.IssueAnswered, Severity: "warning"}, {ID: "2", Status: dtm.IssueClosed, Severity: "error"}}
		}},
		{"IssuesNoEvidence", "issues", cutover.Warn, false, func(f *cutover.Facts) { f.IssuesKnown = false }},
		{"ReconcileMismatch", "reconcile", cutover.Fail, true, func(f *cutover.Facts) { f.Reconciles[0].Match, f.Reconciles[0].Missing = false, 2 }},
		{"ReconcileNone", "reconcile", cutover.Warn, false, func(f *cutover.Facts) { f.Reconciles = nil }},
		{"PredictionSlow", "prediction", cutover.Fail, true, func(f *cutover.Facts) {
			p := &f.Pulls[3] // one delta pull took 35 hours
			p.FinishedAt = p.StartedAt.Add(35 * time.Hour)
			p.AvailableAt = p.FinishedAt.Add(-time.Hour)
		}},
		{"PredictionUnmeasured", "prediction", cutover.Fail, true, func(f *cutover.Facts) { f.Pulls = f.Pulls[:1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := facts()
			tc.edit(&f)
			r := cutover.Assess(f, cutover.Options{})
			c := checkOf(r, tc.check)
			if c.Status != tc.status || c.Blocking != tc.blocks || r.Ready == tc.blocks {
				t.Fatalf("%s = %s (blocking %v, ready %v): %s; want %s blocking %v", c.ID, c.Status, c.Blocking, r.Ready, c.Summary, tc.status, tc.blocks)
			}
		})
	}
}

// recordPulls stores f's pull records in a target state.
func recordPulls(t *testing.T, s dtm.TargetState, f cutover.Facts) {
	t.Helper()
	for _, p := range f.Pulls {
		p.Source = "https://source.example"
		if err := s.SavePull(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		if p.Status == dtm.PullComplete {
			if err := s.CompletePull(t.Context(), p); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestService_Confirm(t *testing.T) {
	ctx := t.Context()
	db := mustOpen(t, t.TempDir()+"/t.db", nil)
	f := facts()
	clock := storetest.NewClock(utc("2026-02-01T10:00:00Z"))
	svc := &cutover.Service{Store: db, State: db, Issues: db, Clock: clock, Logger: quiet()}
	plan, err := svc.CreatePlan(ctx, planRequest("2026-03-27"))
	if err != nil {
		t.Fatal(err)
	}
	req := cutover.ConfirmRequest{Practice: testODS, Kind: dtm.ConfirmReadiness, Name: "Jo Bloggs", Role: "Migration lead", Organisation: "New Systems plc"}
	t.Run("ErrBlocked", func(t *testing.T) {
		clock.Set(f.Now)
		_, rep, err := svc.Confirm(ctx, req)
		if dtm.ErrorCode(err) != dtm.EConflict || !strings.Contains(dtm.ErrorMessage(err), "not ready") || rep.Ready {
			t.Fatalf("confirm with no pulls: %v", err)
		}
	})
	recordPulls(t, db, f)
	if err := db.RecordReconcile(ctx, f.Reconciles[0]); err != nil {
		t.Fatal(err)
	}
	t.Run("ErrInvalid", func(t *testing.T) {
		bad := req
		bad.Organisation = ""
		if _, _, err := svc.Confirm(ctx, bad); dtm.ErrorCode(err) != dtm.EInvalid {
			t.Fatalf("err = %v", err)
		}
		bad = req
		bad.Kind = "maybe"
		if _, _, err := svc.Confirm(ctx, bad); dtm.ErrorCode(err) != dtm.EInvalid {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		for _, kind := range []string{dtm.ConfirmReadiness, dtm.ConfirmSourceStatement, dtm.ConfirmTargetStatement} {
			r := req
			r.Kind = kind
			c, rep, err := svc.Confirm(ctx, r)
			if err != nil || !rep.Ready {
				t.Fatalf("%s: %v", kind, err)
			}
			if !cutover.Verify(c) || c.Statement == "" || !c.At.Equal(f.Now) || len(c.Report) == 0 {
				t.Errorf("%s: confirmation %+v", kind, c)
			}
		}
		cs, err := db.Confirmations(ctx, plan.ID)
		if err != nil || len(cs) != 3 {
			t.Fatalf("confirmations = %d, %v", len(cs), err)
		}
		for _, c := range cs {
			if !cutover.Verify(c) {
				t.Errorf("stored confirmation %s does not verify", c.ID)
			}
			c.Statement += " (edited)"
			if cutover.Verify(c) {
				t.Errorf("an edited confirmation verifies")
			}
		}
	})
	t.Run("ErrTooLate", func(t *testing.T) {
		clock.Set(plan.ReadinessDeadline.Add(time.Second))
		_, _, err := svc.Confirm(ctx, req)
		if dtm.ErrorCode(err) != dtm.EConflict || !strings.Contains(dtm.ErrorMessage(err), "too late") {
			t.Fatalf("err = %v, want too late", err)
		}
	})
	t.Run("AtDeadline", func(t *testing.T) {
		clock.Set(plan.ReadinessDeadline)
		if _, _, err := svc.Confirm(ctx, req); err != nil {
			t.Fatalf("at the deadline itself: %v", err)
		}
	})
}
