package cutover_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/cutover"
)

// TestEndToEnd is the story of issue 7 in virtual time: a practice with
// six weeks of simulated activity is planned, pulled every six days,
// rehearsed, confirmed ready at T-14 days with both suppliers' statements,
// rehearsed again, and cut over on the Friday: reconcile matches, the
// timeline shows every step with its duration, and the evidence report
// shows figures for every requirement.
func TestEndToEnd(t *testing.T) {
	e, run := endToEnd(t)
	t.Run("Timeline", func(t *testing.T) { testTimeline(t, e, run) })
	t.Run("Evidence", func(t *testing.T) { testEvidence(t, e) })
}

func testTimeline(t *testing.T, e *env, run dtm.CutoverRun) {
	if run.State != dtm.RunLive || e.outcome(run).Plan != dtm.PlanLive || !e.frozen() {
		t.Fatalf("cutover ended %s, plan %s, frozen %v", run.State, e.outcome(run).Plan, e.frozen())
	}
	if r := run.Reconcile; r == nil || !r.Match || r.SourceTotal == 0 || r.SourceTotal != r.TargetTotal+r.Quarantined {
		t.Fatalf("reconcile = %+v", run.Reconcile)
	}
	// The window's clock: started at 17:00 London on the Friday, live
	// well before Monday 08:00.
	gl, _ := run.Step(cutover.StepGoLive)
	if run.StartedAt.Before(utc("2026-02-13T17:00:00Z")) || !gl.FinishedAt.Before(utc("2026-02-16T08:00:00Z")) {
		t.Errorf("run from %v to %v", run.StartedAt, gl.FinishedAt)
	}
	events, err := e.tgt.RunEvents(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := cutover.WriteTimeline(&buf, run, events); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	t.Log("\n" + text)
	for _, s := range cutover.Timeline(run) {
		want := s.Status == dtm.StepDone || (s.Step == cutover.StepRollback && s.Status == dtm.StepSkipped)
		if !want || s.End.IsZero() || s.By == "" {
			t.Errorf("step %s: %+v", s.Step, s)
		}
		if !strings.Contains(text, s.Step) {
			t.Errorf("timeline lacks %s", s.Step)
		}
	}
}

// endToEnd runs the whole story and returns the environment and the
// cutover run.
func endToEnd(t *testing.T) (*env, dtm.CutoverRun) {
	t.Helper()
	ctx := t.Context()
	e := newEnv(t, 12, utc("2026-01-05T09:00:00Z"))
	plan := e.plan("2026-02-13")
	if !plan.ReadinessDeadline.Equal(utc("2026-01-30T17:00:00Z")) || plan.Window() != 63*time.Hour {
		t.Fatalf("plan = %+v", plan)
	}
	e.clock.Set(utc("2026-01-05T10:00:00Z"))
	e.pull() // the initial extract (A3)
	for _, day := range []string{"2026-01-11", "2026-01-17", "2026-01-23", "2026-01-29"} {
		e.live(utc(day + "T10:00:00Z"))
		if res := e.pull(); res.Since.IsZero() || res.Counts.Received == 0 {
			t.Fatalf("weekly pull of %s: %+v", day, res.PullRecord)
		}
	}
	rehearse := func() dtm.CutoverRun {
		run, err := e.runner("Olu Operator").Start(ctx, plan.ID, dtm.RunRehearsal)
		if err != nil || run.State != dtm.RunRehearsed || run.Reconcile == nil || !run.Reconcile.Match {
			t.Fatalf("rehearsal: %s %+v, %v", run.State, run.Reconcile, err)
		}
		return run
	}
	rehearse()

	// T-14: readiness from the recorded facts, then the signatures.
	e.live(utc("2026-01-30T12:00:00Z"))
	rep, err := e.svc.Readiness(ctx, testODS)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Ready {
		var buf bytes.Buffer
		rep.WriteText(&buf)
		t.Fatalf("not ready:\n%s", buf.String())
	}
	for _, s := range []struct{ kind, name, org string }{
		{dtm.ConfirmReadiness, "Jo Bloggs", "New Systems plc"},
		{dtm.ConfirmSourceStatement, "Ann Other", "Old Systems Ltd"},
		{dtm.ConfirmTargetStatement, "Jo Bloggs", "New Systems plc"},
	} {
		if _, _, err := e.svc.Confirm(ctx, cutover.ConfirmRequest{Practice: testODS, Kind: s.kind, Name: s.name,
			Role: "Migration lead", Organisation: s.org}); err != nil {
			t.Fatalf("confirm %s: %v", s.kind, err)
		}
	}
	for _, day := range []string{"2026-02-04", "2026-02-09"} {
		e.live(utc(day + "T10:00:00Z"))
		e.pull()
	}
	e.live(utc("2026-02-10T10:00:00Z"))
	rehearse()

	// The weekend: live activity until 17:00 on Friday, then the runbook.
	e.live(plan.WindowStart)
	r := e.runner("Olu Operator")
	run, err := r.Start(ctx, plan.ID, dtm.RunCutover)
	if err != nil || run.State != dtm.RunAwaitingDecision {
		t.Fatalf("cutover: %s, %v", run.State, err)
	}
	if gs, _ := run.Step(cutover.StepGoNoGo); gs.Facts["automatic"] != dtm.DecisionGo {
		t.Fatalf("automatic rules: %v", gs.Facts)
	}
	e.clock.Set(e.clock.Now().Add(20 * time.Minute)) // the practice manager looks at the figures
	run, err = r.Decide(ctx, run.ID, dtm.Decision{Decision: dtm.DecisionGo, By: "Dee Cider", Role: "Practice manager",
		Reason: "reconciled exactly; all rules passed"})
	if err != nil {
		t.Fatal(err)
	}
	return e, run
}
