package cutover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/target"
)

// Runbook step names, in the order they run.
const (
	StepFreeze    = "freeze"    // the source stops ingest and publishes its final watermark
	StepPull      = "pull"      // the final delta pull (download, validate, load inside)
	StepValidate  = "validate"  // the pull's validation findings and quarantine
	StepLoad      = "load"      // counts reconcile and the checkpoint advanced (invariants 4, 5)
	StepReconcile = "reconcile" // source and target compared exactly, quarantine accounted for
	StepGoNoGo    = "go-no-go"  // the automatic rules
	StepDecision  = "decision"  // the recorded human decision
	StepGoLive    = "go-live"   // the plan goes live
	StepRollback  = "rollback"  // no-go: the source is unfrozen
)

// StepNames lists the runbook's steps in order.
var StepNames = []string{StepFreeze, StepPull, StepValidate, StepLoad, StepReconcile, StepGoNoGo, StepDecision, StepGoLive, StepRollback}

// Puller does one crash-safe pull of a practice; *target.Puller is one.
type Puller interface {
	Pull(ctx context.Context, practice string) (target.PullResult, error)
}

// Runner executes runbook runs. Every step is persisted when it starts and
// when it ends, and every step is idempotent, so a run that crashed or lost
// its connection resumes where it stopped (Resume), even in another
// process. Store, State, Puller, Reconciler and Clock are required;
// Freezer is required for the cutover itself. A Runner is safe for
// concurrent use on different runs; two runners on one run are kept apart
// by the store's version check (one of them gets an EConflict error).
type Runner struct {
	Store      dtm.Cutovers
	State      dtm.TargetState
	Puller     Puller
	Freezer    Freezer
	Reconciler Reconciler
	// Phases, when set, is the PhaseTimer the Puller reports to; its
	// phase durations are recorded in the validate and load steps.
	Phases *PhaseTimer
	Clock  dtm.Clock
	Logger *slog.Logger
	// By names the operator: every step and event is attributed to them.
	By string

	// hook, in tests, is called before and after each step's work
	// (point "before" or "after"); an error stops the run there as a crash
	// would.
	hook func(step, point string) error
}

// errAwait stops a run at the decision step until a person decides.
var errAwait = errors.New("awaiting the go/no-go decision")

// errSkip marks a step that does not apply to this run.
type errSkip struct{ why string }

// Error returns the reason the step was skipped.
func (e errSkip) Error() string { return "skipped: " + e.why }

func (r *Runner) log() *slog.Logger {
	if r.Logger == nil {
		return slog.Default()
	}
	return r.Logger
}

// Start begins a run of the plan in mode (dtm.RunRehearsal or
// dtm.RunCutover) and runs it as far as it goes: to the end of a
// rehearsal, or to the go/no-go decision of a cutover. An unfinished run
// of the same plan and mode is resumed instead of starting another. It
// returns an EConflict error when the plan is not active or, for the
// cutover, when the window is not open; and a step's error when one fails
// (the run is then saved as failed, and Resume retries it).
func (r *Runner) Start(ctx context.Context, planID, mode string) (dtm.CutoverRun, error) {
	if mode != dtm.RunRehearsal && mode != dtm.RunCutover {
		return dtm.CutoverRun{}, dtm.Errorf(dtm.EInvalid, "run mode must be %s or %s", dtm.RunRehearsal, dtm.RunCutover)
	}
	if r.By == "" {
		return dtm.CutoverRun{}, dtm.Errorf(dtm.EInvalid, "a run must say who runs it")
	}
	plan, err := r.Store.CutoverPlan(ctx, planID)
	if err != nil {
		return dtm.CutoverRun{}, err
	}
	runs, err := r.Store.CutoverRuns(ctx, plan.ID)
	if err != nil {
		return dtm.CutoverRun{}, fmt.Errorf("start run: %w", err)
	}
	n := 0
	for _, run := range runs {
		if run.Mode != mode {
			continue
		}
		n++
		if !finished(run.State) {
			r.log().Info("resuming unfinished run", "run", run.ID, "state", run.State, "by", r.By)
			return r.Resume(ctx, run.ID)
		}
	}
	if plan.Status != dtm.PlanActive {
		return dtm.CutoverRun{}, dtm.Errorf(dtm.EConflict, "plan %s is %s", plan.ID, plan.Status)
	}
	now := r.Clock.Now()
	if mode == dtm.RunCutover {
		if r.Freezer == nil {
			return dtm.CutoverRun{}, dtm.Errorf(dtm.EInvalid, "the cutover needs a freezer")
		}
		if now.Before(plan.WindowStart) {
			return dtm.CutoverRun{}, dtm.Errorf(dtm.EConflict, "the cutover window opens at %s; rehearse until then", Local(plan.WindowStart))
		}
		if !now.Before(plan.GoLive) {
			return dtm.CutoverRun{}, dtm.Errorf(dtm.EConflict, "the cutover window closed at %s", Local(plan.GoLive))
		}
	}
	run := dtm.CutoverRun{ID: fmt.Sprintf("%s-%s-%d", plan.ID, mode, n+1), Plan: plan.ID, Practice: plan.Practice,
		Mode: mode, State: dtm.RunInProgress, StartedBy: r.By, StartedAt: now}
	for _, name := range StepNames {
		run.Steps = append(run.Steps, dtm.RunbookStep{Name: name, Status: dtm.StepPending})
	}
	if err := r.save(ctx, &run); err != nil {
		return dtm.CutoverRun{}, fmt.Errorf("start run: %w", err)
	}
	r.event(ctx, run, "", "start", mode+" run started")
	r.log().Info("cutover run started", "run", run.ID, "mode", mode, "by", r.By)
	return r.Resume(ctx, run.ID)
}

// finished reports whether a run state is terminal.
func finished(state string) bool {
	return state == dtm.RunLive || state == dtm.RunRolledBack || state == dtm.RunRehearsed
}

// Resume continues the run from its first unfinished step, re-running a
// step that was running when a previous process stopped. It returns the
// run as saved; a finished run is returned unchanged.
func (r *Runner) Resume(ctx context.Context, id string) (dtm.CutoverRun, error) {
	run, err := r.Store.CutoverRun(ctx, id)
	if err != nil {
		return dtm.CutoverRun{}, err
	}
	if finished(run.State) {
		return run, nil
	}
	plan, err := r.Store.CutoverPlan(ctx, run.Plan)
	if err != nil {
		return run, err
	}
	for i := range run.Steps {
		switch run.Steps[i].Status {
		case dtm.StepDone, dtm.StepSkipped:
			continue
		}
		if err := r.runStep(ctx, &run, plan, i); errors.Is(err, errAwait) {
			return run, nil
		} else if err != nil {
			return run, err
		}
		if run.Steps[i].Name == StepGoLive || run.Steps[i].Name == StepRollback {
			// go-live or rollback may have changed the plan.
			if plan, err = r.Store.CutoverPlan(ctx, run.Plan); err != nil {
				return run, err
			}
		}
	}
	run.State, run.FinishedAt = r.endState(run), r.Clock.Now()
	if err := r.save(ctx, &run); err != nil {
		return run, err
	}
	r.event(ctx, run, "", "finished", run.State)
	r.log().Info("cutover run finished", "run", run.ID, "state", run.State, "by", r.By)
	return run, nil
}

func (r *Runner) endState(run dtm.CutoverRun) string {
	switch {
	case run.Mode == dtm.RunRehearsal:
		return dtm.RunRehearsed
	case run.Decision != nil && run.Decision.Decision == dtm.DecisionGo:
		return dtm.RunLive
	}
	return dtm.RunRolledBack
}

// runStep runs step i of run, saving it before and after.
func (r *Runner) runStep(ctx context.Context, run *dtm.CutoverRun, plan dtm.Plan, i int) error {
	st := &run.Steps[i]
	waiting := st.Name == StepDecision && st.Status == dtm.StepRunning && run.State == dtm.RunAwaitingDecision
	kind := "start"
	if st.Status == dtm.StepRunning || st.Status == dtm.StepFailed {
		kind = "resume"
	}
	if !waiting {
		st.Status, st.StartedAt, st.By, st.Error = dtm.StepRunning, r.Clock.Now(), r.By, ""
		st.FinishedAt = time.Time{}
		st.Attempts++
	}
	run.State = dtm.RunInProgress
	if err := r.save(ctx, run); err != nil {
		return err
	}
	if !waiting {
		r.event(ctx, *run, st.Name, kind, fmt.Sprintf("attempt %d", st.Attempts))
	}
	if err := r.callHook(st.Name, "before"); err != nil {
		return err
	}
	facts, err := r.exec(ctx, run, plan, st)
	if herr := r.callHook(st.Name, "after"); herr != nil {
		return herr
	}
	var skip errSkip
	switch {
	case errors.Is(err, errAwait):
		run.State = dtm.RunAwaitingDecision
		if serr := r.save(ctx, run); serr != nil {
			return serr
		}
		r.event(ctx, *run, st.Name, "awaiting", "automatic rules recorded; waiting for a person to decide")
		return errAwait
	case errors.As(err, &skip):
		st.Status, st.FinishedAt = dtm.StepSkipped, r.Clock.Now()
		st.Facts = map[string]string{"skip": skip.why}
		r.event(ctx, *run, st.Name, "skipped", skip.why)
		return r.save(ctx, run)
	case err != nil:
		st.Status, st.FinishedAt, st.Error = dtm.StepFailed, r.Clock.Now(), dtm.ErrorMessage(err)
		if dtm.ErrorCode(err) == dtm.EInternal {
			st.Error = err.Error()
		}
		run.State = dtm.RunFailed
		r.log().Error("cutover step failed", "run", run.ID, "step", st.Name, "by", r.By, "err", err)
		if serr := r.save(ctx, run); serr != nil {
			return errors.Join(err, serr)
		}
		r.event(ctx, *run, st.Name, "failed", st.Error)
		return fmt.Errorf("step %s: %w", st.Name, err)
	}
	st.Status, st.FinishedAt, st.Facts = dtm.StepDone, r.Clock.Now(), facts
	if st.Name == StepDecision && run.Decision != nil {
		st.By = run.Decision.By // the decision is the decider's, not the operator's
	}
	if err := r.save(ctx, run); err != nil {
		return err
	}
	r.event(ctx, *run, st.Name, "done", "took "+dur(st.Duration()))
	r.log().Info("cutover step done", "run", run.ID, "step", st.Name, "by", r.By, "took", st.Duration())
	return nil
}

func (r *Runner) callHook(step, point string) error {
	if r.hook == nil {
		return nil
	}
	return r.hook(step, point)
}

// save stores run with the next version.
func (r *Runner) save(ctx context.Context, run *dtm.CutoverRun) error {
	run.Version++
	run.UpdatedAt = r.Clock.Now()
	if err := r.Store.SaveCutoverRun(ctx, *run); err != nil {
		run.Version--
		return fmt.Errorf("save run %s: %w", run.ID, err)
	}
	return nil
}

// event appends to the run's log; a failure is logged, not returned: the
// run record itself is the source of truth.
func (r *Runner) event(ctx context.Context, run dtm.CutoverRun, step, kind, detail string) {
	e := dtm.RunEvent{Run: run.ID, At: r.Clock.Now(), Step: step, Event: kind, By: r.By, Detail: detail}
	if err := r.Store.AppendRunEvent(ctx, e); err != nil {
		r.log().Warn("run event not recorded", "run", run.ID, "step", step, "event", kind, "err", err)
	}
}

// Decide records a person's go/no-go decision on a cutover run and
// resumes it: go-live on go, rollback (unfreeze) on no-go. A no-go may be
// given at any point of an unfinished run (the remaining steps before the
// decision are skipped); go only when the run awaits the decision and
// every automatic rule passed. It returns an EConflict error otherwise.
func (r *Runner) Decide(ctx context.Context, id string, d dtm.Decision) (dtm.CutoverRun, error) {
	if d.Decision != dtm.DecisionGo && d.Decision != dtm.DecisionNoGo {
		return dtm.CutoverRun{}, dtm.Errorf(dtm.EInvalid, "decision must be %s or %s", dtm.DecisionGo, dtm.DecisionNoGo)
	}
	if d.By == "" {
		return dtm.CutoverRun{}, dtm.Errorf(dtm.EInvalid, "a decision must say who made it")
	}
	run, err := r.Store.CutoverRun(ctx, id)
	if err != nil {
		return dtm.CutoverRun{}, err
	}
	switch {
	case run.Mode != dtm.RunCutover:
		return run, dtm.Errorf(dtm.EConflict, "run %s is a rehearsal: it takes no decision", run.ID)
	case finished(run.State):
		return run, dtm.Errorf(dtm.EConflict, "run %s is already %s", run.ID, run.State)
	case run.Decision != nil:
		return run, dtm.Errorf(dtm.EConflict, "run %s was already decided %s by %s", run.ID, run.Decision.Decision, run.Decision.By)
	}
	if d.Decision == dtm.DecisionGo {
		if run.State != dtm.RunAwaitingDecision {
			return run, dtm.Errorf(dtm.EConflict, "run %s is %s: go can be decided only after the automatic rules", run.ID, run.State)
		}
		if gs, _ := run.Step(StepGoNoGo); gs.Facts["automatic"] != dtm.DecisionGo {
			return run, dtm.Errorf(dtm.EConflict, "the automatic rules said no-go (%s): only no-go can be decided", gs.Facts["failed"])
		}
	}
	d.At = r.Clock.Now()
	run.Decision = &d
	dec := slices.Index(StepNames, StepDecision)
	for i := range run.Steps[:dec] {
		if s := &run.Steps[i]; s.Status != dtm.StepDone && s.Status != dtm.StepSkipped {
			s.Status, s.FinishedAt = dtm.StepSkipped, d.At
			s.Facts = map[string]string{"skip": "abandoned by a no-go decision"}
		}
	}
	if err := r.save(ctx, &run); err != nil {
		return run, err
	}
	r.event(ctx, run, StepDecision, "decision", d.Decision+" by "+d.By+": "+d.Reason)
	r.log().Info("cutover decision recorded", "run", run.ID, "decision", d.Decision, "by", d.By)
	return r.Resume(ctx, id)
}
