package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/web"
)

// vclock is a settable virtual clock.
type vclock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *vclock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *vclock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// mustDashStore opens a SQLite store in a temporary directory on clock.
func mustDashStore(tb testing.TB, clock dtm.Clock) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "dash.db"),
		sqlite.Options{Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// mustApply commits n Observations of the practice at the clock's time t.
func mustApply(tb testing.TB, db *sqlite.DB, clock *vclock, t time.Time, ods string, ids ...string) {
	tb.Helper()
	clock.Set(t)
	var ws []dtm.Write
	for _, id := range ids {
		ws = append(ws, dtm.Write{Type: "Observation", ID: id, Op: dtm.OpUpsert,
			JSON: []byte(`{"resourceType":"Observation","id":"` + id + `","status":"final"}`)})
	}
	if _, err := db.Apply(context.Background(), ods, ws); err != nil {
		tb.Fatal(err)
	}
}

// day0 is Saturday 10 October 2026, 10:00 BST.
var day0 = time.Date(2026, 10, 10, 9, 0, 0, 0, time.UTC)

func TestSourceDashboard(t *testing.T) {
	ctx := context.Background()
	clock := &vclock{t: day0.AddDate(0, 0, -3)}
	db := mustDashStore(t, clock)
	if _, err := db.CreatePractice(ctx, dtm.Practice{ODS: "A81001", Name: "Riverside Surgery"}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, db, clock, day0.AddDate(0, 0, -2), "A81001", "a", "b", "c")
	mustApply(t, db, clock, day0.AddDate(0, 0, -1), "A81001", "d", "e")
	mustApply(t, db, clock, day0, "A81001", "f")
	if err := db.SetWatermark(ctx, "A81001", day0.Add(-30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := db.Record(ctx, dtm.AuditEvent{Time: day0.Add(-3 * time.Hour), Client: "tss-1", Action: dtm.AuditKickoff,
		Practice: "A81001", Job: "job-1", Outcome: dtm.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	issue := dtm.DataIssue{Practice: "A81001", Severity: "error", Category: dtm.IssueValidation, Rule: "nhs-number-check-digit",
		Title: "Bad check digits", Resources: []string{"Patient/a"}}
	if err := issue.Apply(dtm.IssueAction{Action: dtm.IssueRaise, Actor: "tss-1", At: day0.Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateIssue(ctx, issue); err != nil {
		t.Fatal(err)
	}

	clock.Set(day0.Add(time.Hour))
	d, err := sourceDashboard(db, clock, dtm.IssuePolicy{})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Role != web.RoleSource || len(d.Practices) != 1 {
		t.Fatalf("dashboard %+v", d)
	}
	p := d.Practices[0]
	if p.ODS != "A81001" || p.Name != "Riverside Surgery" || p.Resources != 6 {
		t.Errorf("practice %s %q with %d resources", p.ODS, p.Name, p.Resources)
	}
	if f := p.Freshness; f.State != dtm.FreshOK || f.Lag != time.Hour || !f.Watermark.Equal(day0.Add(-30*time.Minute)) {
		t.Errorf("freshness %+v", f)
	}
	if p.Changes == nil || len(p.Changes.Days) != dashChangesDays {
		t.Fatalf("changes %+v", p.Changes)
	}
	var got []int64
	for _, c := range p.Changes.Days[dashChangesDays-3:] {
		got = append(got, c.Count)
	}
	if got[0] != 3 || got[1] != 2 || got[2] != 1 {
		t.Errorf("changes of the last three days %v, want [3 2 1]", got)
	}
	var peak float64
	for _, pt := range p.Freshness.History {
		peak = max(peak, pt.Value)
	}
	if len(p.Freshness.History) == 0 || peak < 23 || peak > 24.1 {
		t.Errorf("lag history peaks at %.1f h over %d points; want the 24 h gap between commits", peak, len(p.Freshness.History))
	}
	if r := p.Pulls; r == nil || r.Last24h != 1 || !r.LastSuccess.Equal(day0.Add(-3*time.Hour)) || r.LastConsume >= 0 ||
		len(r.Recent) != 1 || r.Recent[0].Client != "tss-1" {
		t.Errorf("retrievals %+v", r)
	}
	if i := p.Issues; i == nil || len(i.Open) != 1 || i.Open[0].Rule != "nhs-number-check-digit" || i.Open[0].WaitingOn != "source" {
		t.Errorf("issues %+v", i)
	}
	if p.Findings != nil || p.Reconcile != nil || p.Cutover != nil {
		t.Error("the source shows the target's records")
	}

	// A second read continues from where the first stopped.
	mustApply(t, db, clock, day0.Add(2*time.Hour), "A81001", "g", "h")
	d, err = sourceDashboard(db, clock, dtm.IssuePolicy{})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := d.Practices[0].Changes.Days[dashChangesDays-1].Count; n != 3 {
		t.Errorf("changes today %d, want 3", n)
	}
}

func TestTargetDashboard(t *testing.T) {
	ctx := context.Background()
	clock := &vclock{t: day0}
	db := mustDashStore(t, clock)
	if _, err := db.CreatePractice(ctx, dtm.Practice{ODS: "A81001"}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, db, clock, day0.Add(-24*time.Hour), "A81001", "a", "b")
	src := "https://source.example"
	for i, p := range []dtm.PullRecord{
		{ID: "p1", StartedAt: day0.Add(-26 * time.Hour), AvailableAt: day0.Add(-25 * time.Hour), FinishedAt: day0.Add(-24 * time.Hour),
			TransactionTime: day0.Add(-27 * time.Hour), Counts: dtm.PullCounts{Received: 4, Applied: 2, Quarantined: 2, Warnings: 5}},
		{ID: "p2", StartedAt: day0.Add(-2 * time.Hour), AvailableAt: day0.Add(-2 * time.Hour), FinishedAt: day0.Add(-90 * time.Minute),
			TransactionTime: day0.Add(-3 * time.Hour), SourceWatermark: day0.Add(-150 * time.Minute)},
	} {
		p.Source, p.Practice, p.Status = src, "A81001", dtm.PullApplying
		if err := db.SavePull(ctx, p); err != nil {
			t.Fatal(err)
		}
		p.Status = dtm.PullComplete
		if err := db.CompletePull(ctx, p); err != nil {
			t.Fatalf("pull %d: %v", i, err)
		}
	}
	oo := `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"nhs-number-check-digit: bad"},` +
		`{"severity":"warning","code":"required","diagnostics":"ukcore-nhs-number-missing: none"}]}`
	if err := db.Quarantine(ctx, []dtm.QuarantineRecord{
		{Pull: "p1", Practice: "A81001", Reason: dtm.QuarantineInvalid, Type: "Patient", ID: "x", Outcome: []byte(oo), At: day0},
		{Pull: "p1", Practice: "A81001", Reason: dtm.QuarantineAttachment, Type: "DocumentReference", ID: "y", At: day0},
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 10, 23, 16, 0, 0, 0, time.UTC)
	plan := dtm.Plan{ID: "A81001-2026-10-23", Practice: "A81001", Date: "2026-10-23", WindowStart: start,
		GoLive: time.Date(2026, 10, 26, 8, 0, 0, 0, time.UTC), ReadinessDeadline: start.AddDate(0, 0, -14), Status: dtm.PlanActive}
	if err := db.SaveCutoverPlan(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if err := db.AddConfirmation(ctx, dtm.Confirmation{ID: "c1", Plan: plan.ID, Practice: "A81001", Kind: dtm.ConfirmReadiness,
		Name: "A Lead", At: day0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveCutoverRun(ctx, dtm.CutoverRun{ID: "r1", Plan: plan.ID, Practice: "A81001", Mode: dtm.RunRehearsal,
		State: dtm.RunInProgress, Version: 1, Steps: []dtm.RunbookStep{
			{Name: "final-pull", Status: dtm.StepDone, StartedAt: day0, FinishedAt: day0.Add(3 * time.Minute)},
			{Name: "reconcile", Status: dtm.StepPending}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordReconcile(ctx, dtm.ReconcileSummary{Practice: "A81001", Method: "digest", At: day0,
		SourceTotal: 4, TargetTotal: 2, Quarantined: 2, Match: true}); err != nil {
		t.Fatal(err)
	}

	clock.Set(day0)
	d, err := targetDashboard(db, db, clock)(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Role != web.RoleTarget || len(d.Practices) != 1 {
		t.Fatalf("dashboard %+v", d)
	}
	p := d.Practices[0]
	if f := p.Freshness; !f.LastUpdated.Equal(day0.Add(-3*time.Hour)) || f.Lag != 150*time.Minute || f.State != dtm.FreshOK || len(f.History) == 0 {
		t.Errorf("freshness %+v", f)
	}
	if r := p.Pulls; r == nil || len(r.Recent) != 2 || r.Recent[0].ID != "p2" || r.LastConsume != 30*time.Minute ||
		!r.LastSuccess.Equal(day0.Add(-90*time.Minute)) || r.Last24h != 1 {
		t.Errorf("pulls %+v", r)
	}
	f := p.Findings
	if f == nil || f.Quarantined != 2 || f.Warnings != 5 || len(f.Rules) != 2 {
		t.Fatalf("findings %+v", f)
	}
	for _, r := range f.Rules {
		if r.Count != 1 || !(r.Rule == "nhs-number-check-digit" && r.Reason == dtm.QuarantineInvalid ||
			r.Rule == "" && r.Reason == dtm.QuarantineAttachment) {
			t.Errorf("rule %+v", r)
		}
	}
	if r := p.Reconcile; r == nil || !r.Match || r.SourceTotal != 4 {
		t.Errorf("reconcile %+v", r)
	}
	c := p.Cutover
	if c == nil || c.Plan != plan.ID || !c.WindowStart.Equal(start) || !c.ReadinessAt.Equal(day0.Add(-time.Hour)) ||
		c.Run == nil || len(c.Run.Steps) != 2 || c.Run.Steps[0].Duration != 3*time.Minute {
		t.Errorf("cutover %+v", c)
	}
	if p.Issues != nil {
		t.Error("the target shows issues it does not keep")
	}
}

func TestLagHistory(t *testing.T) {
	now := day0
	t.Run("Empty", func(t *testing.T) {
		if pts := lagHistory(nil, now); pts != nil {
			t.Errorf("%v", pts)
		}
	})
	t.Run("Gap", func(t *testing.T) {
		// Commits every hour for a day, then nothing for 10 hours.
		var evs []asOfEvent
		for h := 34; h >= 10; h-- {
			at := now.Add(-time.Duration(h) * time.Hour)
			evs = append(evs, asOfEvent{at, at})
		}
		pts := lagHistory(evs, now)
		if len(pts) == 0 || len(pts) > dashLagPoints {
			t.Fatalf("%d points", len(pts))
		}
		last := pts[len(pts)-1]
		if !last.At.Equal(now) || last.Value < 9.99 || last.Value > 10.01 {
			t.Errorf("last point %+v, want 10 h at now", last)
		}
		for _, p := range pts[:len(pts)/2] {
			if p.Value > 1.3 {
				t.Errorf("lag %.2f h while commits came hourly", p.Value)
			}
		}
	})
	t.Run("Watermark", func(t *testing.T) {
		// A watermark seen at now-1h says complete as of now-1h: the
		// lag drops although nothing was committed.
		evs := []asOfEvent{{now.Add(-20 * time.Hour), now.Add(-20 * time.Hour)}, {now.Add(-time.Hour), now.Add(-time.Hour)}}
		pts := lagHistory(evs, now)
		if v := pts[len(pts)-1].Value; v < 0.99 || v > 1.01 {
			t.Errorf("lag now %.2f h, want 1", v)
		}
	})
}

func TestMountDashboard(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api") }) // the target's FHIR API
	h := web.NewHandler(func(context.Context) (web.Dashboard, error) { return web.Dashboard{Title: "dtm test"}, nil },
		web.Options{Interval: time.Hour})
	mountDashboard(ctx, mux, h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for path, want := range map[string]string{"/": "dtm test — dashboard", "/fhir/metadata": "api", "/dashboardx": "api"} {
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %.100q, want %q", path, b, want)
		}
	}
	res, err := srv.Client().Get(srv.URL + web.EventsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("GET /events: %s", ct)
	}
	cancel() // the server shuts down: the stream must end by itself
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, res.Body); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream outlived the server's context")
	}
}

func TestSourceDashboard_NoAudit(t *testing.T) {
	ctx := context.Background()
	clock := &vclock{t: day0}
	db := mustDashStore(t, clock)
	if _, err := db.CreatePractice(ctx, dtm.Practice{ODS: "A81001"}); err != nil {
		t.Fatal(err)
	}
	d, err := sourceDashboard(db, clock, dtm.IssuePolicy{})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := d.Practices[0]
	if p.Pulls != nil {
		t.Errorf("with nothing audited (auth off) retrievals show %+v, want not recorded", p.Pulls)
	}
	if p.Freshness.State != dtm.FreshBreach || len(p.Freshness.History) != 0 || p.Changes == nil {
		t.Errorf("a practice never updated: %+v, changes %+v", p.Freshness, p.Changes)
	}
}

// TestTargetCopyState: the target's copy is judged by weekly pulls (T2)
// and the source's freshness at the last pull (T3), never by the source's
// 6 h and 12 h limits, which it does not meet between weekly pulls.
func TestTargetCopyState(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	pull := func(ago time.Duration, source string) dtm.PullRecord {
		return dtm.PullRecord{ID: "p", FinishedAt: now.Add(-ago), SourceFreshness: source}
	}
	for _, c := range []struct {
		name string
		last dtm.PullRecord
		want string
	}{
		{"never pulled", dtm.PullRecord{}, dtm.FreshBreach},
		{"three days ago", pull(72*time.Hour, dtm.FreshOK), dtm.FreshOK},
		{"six and a half days ago: a pull is due", pull(156*time.Hour, dtm.FreshOK), dtm.FreshWarning},
		{"eight days ago", pull(192*time.Hour, dtm.FreshOK), dtm.FreshBreach},
		{"source behind at the pull", pull(time.Hour, dtm.FreshBreach), dtm.FreshWarning},
	} {
		if got := targetCopyState(c.last, now); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
