package cutover_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/cutover"
	"github.com/dtm-project/dtm/target"
)

// outcome is what must be the same however often a run was interrupted:
// statuses, counts, the reconciliation, the decision and the state of the
// stores, without instants, durations or ids.
type outcome struct {
	State, Plan string
	Frozen      bool
	Steps       string
	Pull        string
	Reconcile   string
	Automatic   string
	Decision    string
	TargetTotal int64
}

func (e *env) outcome(run dtm.CutoverRun) outcome {
	e.t.Helper()
	o := outcome{State: run.State, Frozen: e.frozen()}
	p, err := e.tgt.CutoverPlan(e.ctx, run.Plan)
	if err != nil {
		e.t.Fatal(err)
	}
	o.Plan = p.Status
	var steps []string
	for _, s := range run.Steps {
		steps = append(steps, s.Name+"="+s.Status)
	}
	o.Steps = strings.Join(steps, " ")
	ps, _ := run.Step(cutover.StepPull)
	o.Pull = fmt.Sprintf("received %s applied %s skipped %s deleted %s quarantined %s", ps.Facts["received"], ps.Facts["applied"],
		ps.Facts["skipped"], ps.Facts["deleted"], ps.Facts["quarantined"])
	if r := run.Reconcile; r != nil {
		o.Reconcile = fmt.Sprintf("match %v source %d target %d missing %d extra %d different %d quarantined %d root %s",
			r.Match, r.SourceTotal, r.TargetTotal, r.Missing, r.Extra, r.Different, r.Quarantined, r.SourceRoot)
	}
	gs, _ := run.Step(cutover.StepGoNoGo)
	o.Automatic = gs.Facts["automatic"] + " " + gs.Facts["failed"]
	if run.Decision != nil {
		o.Decision = run.Decision.Decision + " by " + run.Decision.By
	}
	head, err := e.tgt.Head(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	counts, err := e.tgt.Counts(e.ctx, testODS, head.Seq)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, n := range counts {
		o.TargetTotal += n
	}
	return o
}

// runbookEnv is a small practice pulled once, changed at the source, with
// a plan whose window is open and the confirmations recorded.
func runbookEnv(t *testing.T) (*env, dtm.Plan) {
	t.Helper()
	e := newEnvValidate(t, 6, utc("2026-01-05T09:00:00Z"), false)
	p := e.plan("2026-01-30")
	e.pull()
	e.sign(p)
	e.clock.Set(p.WindowStart.Add(-18 * time.Hour))
	e.live(p.WindowStart)
	return e, p
}

var errCrash = errors.New("simulated crash")

// decideIfAwaiting records decision d when the run waits for one.
func decideIfAwaiting(t *testing.T, r *cutover.Runner, run dtm.CutoverRun, d string) (dtm.CutoverRun, error) {
	t.Helper()
	if run.State != dtm.RunAwaitingDecision {
		return run, nil
	}
	return r.Decide(t.Context(), run.ID, dtm.Decision{Decision: d, By: "Dee Cider", Role: "Practice manager", Reason: "test"})
}

// complete runs the cutover to the end with decision d, crashing once at
// (step, point) when step is not "".
func complete(t *testing.T, e *env, p dtm.Plan, d, step, point string) dtm.CutoverRun {
	t.Helper()
	r := e.runner("Olu Operator")
	crashed := false
	cutover.SetHook(r, func(s, pt string) error {
		if s == step && pt == point && !crashed {
			crashed = true
			return errCrash
		}
		return nil
	})
	run, err := r.Start(t.Context(), p.ID, dtm.RunCutover)
	if err == nil {
		run, err = decideIfAwaiting(t, r, run, d)
	}
	if step != "" {
		if !errors.Is(err, errCrash) {
			t.Fatalf("run did not crash at %s/%s: %v (state %s)", step, point, err, run.State)
		}
		// A new process: a new runner, by another operator, resumes.
		r = e.runner("Rhea Resumer")
		if run, err = r.Start(t.Context(), p.ID, dtm.RunCutover); err == nil {
			run, err = decideIfAwaiting(t, r, run, d)
		}
	}
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return run
}

func TestRunner_Cutover(t *testing.T) {
	for _, d := range []string{dtm.DecisionGo, dtm.DecisionNoGo} {
		t.Run(d, func(t *testing.T) {
			e, p := runbookEnv(t)
			ref := complete(t, e, p, d, "", "")
			want := e.outcome(ref)
			if d == dtm.DecisionGo && (want.State != dtm.RunLive || want.Plan != dtm.PlanLive || !want.Frozen) {
				t.Fatalf("go: %+v", want)
			}
			if d == dtm.DecisionNoGo && (want.State != dtm.RunRolledBack || want.Plan != dtm.PlanRolledBack || want.Frozen) {
				t.Fatalf("no-go: %+v", want)
			}
			if !strings.HasPrefix(want.Reconcile, "match true") || strings.TrimSpace(want.Automatic) != dtm.DecisionGo {
				t.Fatalf("outcome: %+v", want)
			}
			for _, s := range ref.Steps {
				if s.Status == dtm.StepDone && (s.By == "" || s.StartedAt.IsZero() || s.FinishedAt.Before(s.StartedAt)) {
					t.Errorf("step %s not timed or attributed: %+v", s.Name, s)
				}
			}
			t.Run("Resume", func(t *testing.T) {
				if testing.Short() {
					t.Skip("a fresh source and target per crash point: skipped with -short")
				}
				for _, step := range cutover.StepNames {
					switch {
					case d == dtm.DecisionGo && step == cutover.StepRollback:
						continue // never runs on this path
					case d == dtm.DecisionNoGo && step != cutover.StepRollback:
						continue // the same as on the go path
					}
					// A crash after a step's work, before its record, is the
					// hard case; crashes before the work are all covered,
					// together, by Chained.
					for _, point := range []string{"after"} {
						t.Run(step+"/"+point, func(t *testing.T) {
							t.Parallel()
							e, p := runbookEnv(t)
							run := complete(t, e, p, d, step, point)
							if got := e.outcome(run); got != want {
								t.Errorf("after a crash at %s/%s:\n got %+v\nwant %+v", step, point, got, want)
							}
							s, _ := run.Step(step)
							if s.Status == dtm.StepDone && s.By != "Rhea Resumer" && point == "before" && step != cutover.StepDecision {
								t.Errorf("step %s attributed to %q, want the resumer", step, s.By)
							}
						})
					}
				}
			})
		})
	}
}

// TestRunner_CrashEverywhere crashes one run before and after the work of
// every step in turn, each time resuming with a new runner, and reaches the
// same outcome as a run that never crashed.
func TestRunner_CrashEverywhere(t *testing.T) {
	e, p := runbookEnv(t)
	crashed := map[string]bool{}
	hook := func(step, point string) error {
		if k := step + "/" + point; !crashed[k] {
			crashed[k] = true
			return errCrash
		}
		return nil
	}
	var run dtm.CutoverRun
	var err error
	for i := 0; ; i++ {
		r := e.runner(fmt.Sprintf("Operator %d", i))
		cutover.SetHook(r, hook)
		if run, err = r.Start(t.Context(), p.ID, dtm.RunCutover); err == nil {
			run, err = decideIfAwaiting(t, r, run, dtm.DecisionGo)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, errCrash) || i > 2*len(cutover.StepNames) {
			t.Fatalf("resume %d: %v", i, err)
		}
	}
	if len(crashed) != 2*len(cutover.StepNames) {
		t.Errorf("crashed at %d points, want %d: %v", len(crashed), 2*len(cutover.StepNames), crashed)
	}
	ref, rp := runbookEnv(t)
	if got, want := e.outcome(run), ref.outcome(complete(t, ref, rp, dtm.DecisionGo, "", "")); got != want {
		t.Errorf("after crashes everywhere:\n got %+v\nwant %+v", got, want)
	}
}

func TestRunner_Rehearsal(t *testing.T) {
	e, p := runbookEnv(t)
	r := e.runner("Olu Operator")
	run, err := r.Start(t.Context(), p.ID, dtm.RunRehearsal)
	if err != nil {
		t.Fatal(err)
	}
	o := e.outcome(run)
	if run.State != dtm.RunRehearsed || o.Frozen || o.Plan != dtm.PlanActive || !strings.HasPrefix(o.Reconcile, "match true") {
		t.Fatalf("rehearsal: %+v", o)
	}
	want := "freeze=done pull=done validate=done load=done reconcile=done go-no-go=done decision=skipped go-live=skipped rollback=skipped"
	if o.Steps != want {
		t.Errorf("steps = %s\nwant %s", o.Steps, want)
	}
	t.Run("ErrDecide", func(t *testing.T) {
		if _, err := r.Decide(t.Context(), run.ID, dtm.Decision{Decision: dtm.DecisionGo, By: "x"}); dtm.ErrorCode(err) != dtm.EConflict {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("Again", func(t *testing.T) {
		again, err := r.Start(t.Context(), p.ID, dtm.RunRehearsal)
		if err != nil || again.ID == run.ID || again.State != dtm.RunRehearsed {
			t.Fatalf("second rehearsal = %s %s, %v", again.ID, again.State, err)
		}
	})
}

func TestRunner_Refusals(t *testing.T) {
	e := newEnv(t, 3, utc("2026-01-05T09:00:00Z"))
	p := e.plan("2026-01-30")
	e.pull()
	r := e.runner("Olu Operator")
	t.Run("ErrWindowNotOpen", func(t *testing.T) {
		if _, err := r.Start(t.Context(), p.ID, dtm.RunCutover); dtm.ErrorCode(err) != dtm.EConflict {
			t.Fatalf("err = %v, want conflict", err)
		}
	})
	t.Run("ErrGoWithoutConfirmation", func(t *testing.T) {
		e.clock.Set(p.WindowStart.Add(time.Minute))
		run, err := r.Start(t.Context(), p.ID, dtm.RunCutover)
		if err != nil || run.State != dtm.RunAwaitingDecision {
			t.Fatalf("run = %s, %v", run.State, err)
		}
		gs, _ := run.Step(cutover.StepGoNoGo)
		if gs.Facts["automatic"] != dtm.DecisionNoGo || !strings.Contains(gs.Facts["failed"], "readiness-confirmed") {
			t.Fatalf("go/no-go facts = %v", gs.Facts)
		}
		if _, err := r.Decide(t.Context(), run.ID, dtm.Decision{Decision: dtm.DecisionGo, By: "x"}); dtm.ErrorCode(err) != dtm.EConflict {
			t.Fatalf("go over failed rules: %v, want conflict", err)
		}
		run, err = r.Decide(t.Context(), run.ID, dtm.Decision{Decision: dtm.DecisionNoGo, By: "x", Reason: "not confirmed"})
		if err != nil || run.State != dtm.RunRolledBack || e.frozen() {
			t.Fatalf("no-go: %s frozen=%v, %v", run.State, e.frozen(), err)
		}
	})
	t.Run("ErrPlanNotActive", func(t *testing.T) {
		if _, err := r.Start(t.Context(), p.ID, dtm.RunRehearsal); dtm.ErrorCode(err) != dtm.EConflict {
			t.Fatalf("err = %v, want conflict", err)
		}
	})
}

// cancelOnDownload cancels a pull as soon as its downloads start: the pull
// is left active, its export pinned to a snapshot of that moment.
type cancelOnDownload struct{ cancel func() }

func (c cancelOnDownload) Start(phase string, _ int64) {
	if phase == "download" {
		c.cancel()
	}
}
func (cancelOnDownload) Add(string, string, int64) {}
func (cancelOnDownload) Done(string)               {}

// TestRunner_PullBeforeFreeze: a scheduled pull in flight when the window
// opens resumes at the final pull step with an export older than the
// freeze; the step pulls again so that the final pull covers the freeze.
func TestRunner_PullBeforeFreeze(t *testing.T) {
	e, p := runbookEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	c, err := target.NewClient(e.srcURL, target.ClientOptions{Logger: quiet(), Clock: e.clock, MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	inflight, err := target.NewPuller(target.Config{Store: e.tgt, State: e.tgt, Client: c, WorkDir: t.TempDir(), Clock: e.clock,
		Logger: quiet(), Progress: cancelOnDownload{cancel}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inflight.Pull(ctx, testODS); err == nil {
		t.Fatal("the in-flight pull completed")
	}
	if _, ok, err := e.tgt.ActivePull(t.Context(), e.srcURL, testODS); err != nil || !ok {
		t.Fatalf("no active pull left: %v", err)
	}
	e.live(p.WindowStart.Add(8 * time.Hour)) // changes after that export's snapshot
	run := complete(t, e, p, dtm.DecisionGo, "", "")
	ps, _ := run.Step(cutover.StepPull)
	if run.State != dtm.RunLive || ps.Facts["resumed"] != "true" || !strings.HasPrefix(e.outcome(run).Reconcile, "match true") {
		t.Fatalf("run %s, pull facts %v, reconcile %+v", run.State, ps.Facts, run.Reconcile)
	}
}
