package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

// CutoverOpener returns a new, empty dtm.Cutovers. It must arrange for it
// to be closed when t ends.
type CutoverOpener func(t *testing.T) dtm.Cutovers

// RunCutover runs the conformance suite of dtm.Cutovers against the stores
// open returns, one new store per subtest.
func RunCutover(t *testing.T, open CutoverOpener) {
	t.Run("Plans", func(t *testing.T) { testCutoverPlans(t, open) })
	t.Run("Confirmations", func(t *testing.T) { testConfirmations(t, open) })
	t.Run("Runs", func(t *testing.T) { testCutoverRuns(t, open) })
	t.Run("RunEvents", func(t *testing.T) { testRunEvents(t, open) })
	t.Run("Reconciles", func(t *testing.T) { testReconciles(t, open) })
}

func testPlan(id, practice string, created time.Time) dtm.Plan {
	return dtm.Plan{
		ID: id, Practice: practice, SourceSupplier: "Old Systems Ltd", TargetSupplier: "New Systems plc",
		SourceURL: "https://source.test", Date: "2026-10-23",
		WindowStart: time.Date(2026, 10, 23, 16, 0, 0, 0, time.UTC), GoLive: time.Date(2026, 10, 26, 8, 0, 0, 0, time.UTC),
		ReadinessDeadline: time.Date(2026, 10, 9, 16, 0, 0, 0, time.UTC),
		Status:            dtm.PlanActive, CreatedBy: "jo", CreatedAt: created, UpdatedAt: created,
	}
}

func testCutoverPlans(t *testing.T, open CutoverOpener) {
	ctx := t.Context()
	s := open(t)
	a1 := testPlan("A-1", PracticeA, Epoch)
	a2 := testPlan("A-2", PracticeA, Epoch.Add(time.Hour))
	b1 := testPlan("B-1", PracticeB, Epoch.Add(2*time.Hour))
	for _, p := range []dtm.Plan{a1, a2, b1} {
		if err := s.SaveCutoverPlan(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("OK", func(t *testing.T) {
		got, err := s.CutoverPlan(ctx, "A-1")
		if err != nil || !samePlan(got, a1) {
			t.Fatalf("plan = %+v, %v; want %+v", got, err, a1)
		}
	})
	t.Run("Replace", func(t *testing.T) {
		a1.Status = dtm.PlanCancelled
		if err := s.SaveCutoverPlan(ctx, a1); err != nil {
			t.Fatal(err)
		}
		got, err := s.CutoverPlan(ctx, "A-1")
		if err != nil || got.Status != dtm.PlanCancelled {
			t.Fatalf("plan = %+v, %v", got, err)
		}
	})
	t.Run("List", func(t *testing.T) {
		ps, err := s.CutoverPlans(ctx, PracticeA)
		if err != nil || len(ps) != 2 || ps[0].ID != "A-2" || ps[1].ID != "A-1" {
			t.Fatalf("plans = %+v, %v; want A-2, A-1", ps, err)
		}
		all, err := s.CutoverPlans(ctx, "")
		if err != nil || len(all) != 3 || all[0].ID != "B-1" {
			t.Fatalf("all plans = %+v, %v", all, err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := s.CutoverPlan(ctx, "nope"); dtm.ErrorCode(err) != dtm.ENotFound {
			t.Fatalf("err = %v, want not-found", err)
		}
	})
}

func samePlan(a, b dtm.Plan) bool {
	return a.ID == b.ID && a.Practice == b.Practice && a.SourceSupplier == b.SourceSupplier &&
		a.TargetSupplier == b.TargetSupplier && a.SourceURL == b.SourceURL && a.Date == b.Date &&
		a.WindowStart.Equal(b.WindowStart) && a.GoLive.Equal(b.GoLive) &&
		a.ReadinessDeadline.Equal(b.ReadinessDeadline) && a.Status == b.Status &&
		a.CreatedBy == b.CreatedBy && a.CreatedAt.Equal(b.CreatedAt)
}

func testConfirmations(t *testing.T, open CutoverOpener) {
	ctx := t.Context()
	s := open(t)
	c1 := dtm.Confirmation{ID: "c1", Plan: "A-1", Practice: PracticeA, Kind: dtm.ConfirmReadiness, Name: "Jo Bloggs",
		Role: "Migration lead", Organisation: "New Systems plc", Statement: "Ready.", At: Epoch,
		Report: []byte(`{"checks":[]}`), Digest: "abc"}
	c2 := c1
	c2.ID, c2.Kind, c2.At = "c2", dtm.ConfirmSourceStatement, Epoch.Add(time.Minute)
	for _, c := range []dtm.Confirmation{c1, c2} {
		if err := s.AddConfirmation(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("OK", func(t *testing.T) {
		cs, err := s.Confirmations(ctx, "A-1")
		if err != nil || len(cs) != 2 || cs[0].ID != "c1" || cs[1].ID != "c2" {
			t.Fatalf("confirmations = %+v, %v", cs, err)
		}
		if got := cs[0]; got.Name != c1.Name || got.Role != c1.Role || got.Organisation != c1.Organisation ||
			got.Statement != c1.Statement || !got.At.Equal(c1.At) || string(got.Report) != string(c1.Report) || got.Digest != c1.Digest {
			t.Errorf("confirmation = %+v, want %+v", got, c1)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		if err := s.AddConfirmation(ctx, c1); dtm.ErrorCode(err) != dtm.EConflict {
			t.Fatalf("err = %v, want conflict", err)
		}
	})
	t.Run("OtherPlan", func(t *testing.T) {
		if cs, err := s.Confirmations(ctx, "A-2"); err != nil || len(cs) != 0 {
			t.Fatalf("confirmations = %+v, %v", cs, err)
		}
	})
}

func testCutoverRuns(t *testing.T, open CutoverOpener) {
	ctx := t.Context()
	s := open(t)
	r := dtm.CutoverRun{ID: "r1", Plan: "A-1", Practice: PracticeA, Mode: dtm.RunRehearsal, State: dtm.RunInProgress,
		Steps:     []dtm.RunbookStep{{Name: "pull", Status: dtm.StepPending}},
		StartedBy: "jo", StartedAt: Epoch, UpdatedAt: Epoch, Version: 1}
	if err := s.SaveCutoverRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	t.Run("ErrConflictCreate", func(t *testing.T) {
		if err := s.SaveCutoverRun(ctx, r); dtm.ErrorCode(err) != dtm.EConflict {
			t.Fatalf("err = %v, want conflict", err)
		}
	})
	r.Version = 2
	r.Steps[0] = dtm.RunbookStep{Name: "pull", Status: dtm.StepDone, By: "jo", StartedAt: Epoch, FinishedAt: Epoch.Add(time.Minute),
		Attempts: 1, Facts: map[string]string{"received": "12"}}
	r.Decision = &dtm.Decision{Decision: dtm.DecisionGo, By: "jo", At: Epoch}
	r.Reconcile = &dtm.ReconcileSummary{Practice: PracticeA, Match: true, SourceTotal: 12, TargetTotal: 12}
	if err := s.SaveCutoverRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		got, err := s.CutoverRun(ctx, "r1")
		if err != nil || got.Version != 2 || len(got.Steps) != 1 || got.Steps[0].Facts["received"] != "12" ||
			got.Steps[0].Duration() != time.Minute || got.Decision == nil || got.Reconcile == nil || !got.Reconcile.Match {
			t.Fatalf("run = %+v, %v", got, err)
		}
	})
	t.Run("ErrConflictStale", func(t *testing.T) {
		stale := r
		stale.Version = 2
		if err := s.SaveCutoverRun(ctx, stale); dtm.ErrorCode(err) != dtm.EConflict {
			t.Fatalf("err = %v, want conflict", err)
		}
	})
	t.Run("List", func(t *testing.T) {
		r2 := dtm.CutoverRun{ID: "r2", Plan: "A-1", Practice: PracticeA, Mode: dtm.RunCutover, StartedAt: Epoch.Add(time.Hour), Version: 1}
		if err := s.SaveCutoverRun(ctx, r2); err != nil {
			t.Fatal(err)
		}
		rs, err := s.CutoverRuns(ctx, "A-1")
		if err != nil || len(rs) != 2 || rs[0].ID != "r2" || rs[1].ID != "r1" {
			t.Fatalf("runs = %+v, %v; want r2, r1", rs, err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := s.CutoverRun(ctx, "nope"); dtm.ErrorCode(err) != dtm.ENotFound {
			t.Fatalf("err = %v, want not-found", err)
		}
	})
}

func testRunEvents(t *testing.T, open CutoverOpener) {
	ctx := t.Context()
	s := open(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.AppendRunEvent(ctx, dtm.RunEvent{Run: "r1", At: Epoch.Add(time.Duration(i)), Step: "pull", Event: "start", By: "jo"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := s.AppendRunEvent(ctx, dtm.RunEvent{Run: "r2", At: Epoch, Event: "start"}); err != nil {
		t.Fatal(err)
	}
	es, err := s.RunEvents(ctx, "r1")
	if err != nil || len(es) != 20 {
		t.Fatalf("events = %d, %v; want 20", len(es), err)
	}
	for i, e := range es {
		if e.Seq != int64(i+1) || e.Run != "r1" || e.Step != "pull" {
			t.Fatalf("event %d = %+v", i, e)
		}
	}
}

func testReconciles(t *testing.T, open CutoverOpener) {
	ctx := t.Context()
	s := open(t)
	for i := range 3 {
		if err := s.RecordReconcile(ctx, dtm.ReconcileSummary{Practice: PracticeA, At: Epoch.Add(time.Duration(i) * time.Hour),
			SourceTotal: int64(i), Match: i == 2, Duration: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ReconcileHistory(ctx, PracticeA, 2)
	if err != nil || len(got) != 2 || got[0].SourceTotal != 2 || !got[0].Match || got[1].SourceTotal != 1 || got[0].Duration != time.Second {
		t.Fatalf("history = %+v, %v", got, err)
	}
	if got, err := s.ReconcileHistory(ctx, PracticeB, 10); err != nil || len(got) != 0 {
		t.Fatalf("history of B = %+v, %v", got, err)
	}
}
