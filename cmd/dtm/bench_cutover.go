package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/cutover"
	"github.com/dtm-project/dtm/reconcile"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
)

// benchOperator is who the bench's cutover runs are attributed to.
const benchOperator = "dtm bench"

// cutoverBudget is the cutover's budget in DESIGN.md.
const cutoverBudget = 10 * time.Minute

// treeFile is where the target keeps its digest tree between reconciles.
func (b *benchRun) treeFile() string { return filepath.Join(b.dir, "work", "digest-tree") }

// reconcile measures a first reconcile of the pulled practice, as "dtm
// target reconcile" does it: the source's digest over its API against the
// target's computed from its store (both cold), with the target's tree kept
// for the cutover's reconcile. It fails unless they match.
func (b *benchRun) reconcile(ctx context.Context) error {
	var rep target.ReconcileReport
	elapsed, peak, err := measure(func() error {
		var err error
		rep, err = target.Reconcile(ctx, b.client, b.tgt, demoPractice, target.ReconcileOptions{State: b.tgt, TreeFile: b.treeFile()})
		return err
	})
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	if rep.Result == target.ReconcileMismatch {
		return fmt.Errorf("reconcile: %s (source %d resources, root %s; target %d, root %s)", rep.Result,
			rep.SourceDigest.Total, rep.SourceDigest.Root, rep.TargetDigest.Total, rep.TargetDigest.Root)
	}
	b.add("reconcile, first (source and target digests)", elapsed.Seconds(), "s", sizingBudget, false, 0, peak,
		fmt.Sprintf("%s: source %d resources, target %d (%d quarantined); digests computed from scratch on both sides",
			rep.Result, rep.SourceDigest.Total, rep.TargetDigest.Total, rep.Summary[reconcile.Quarantined]))
	return nil
}

// cutover simulates a week of practice activity at the source since the
// last pull, then measures the whole cutover with cutover.Runner as "dtm
// cutover run" builds it: freeze (over the control plane), the final delta
// pull validated and loaded, the load checks, reconcile (over the API,
// from the kept tree) and the automatic go/no-go rules. The plan is for a
// Friday over two weeks ahead; the runner's clock is moved into its window.
// Afterwards a no-go decision rolls the run back, which unfreezes the
// source. It fails unless the run reaches the decision with a matching
// reconcile.
func (b *benchRun) cutover(ctx context.Context) error {
	begin := time.Now().UTC().Truncate(time.Minute).AddDate(0, 0, -7)
	sim, err := synth.NewSimulator(b.synthOptions(), 1, begin)
	if err != nil {
		return err
	}
	feed := &source.Feed{Store: b.src, Practice: demoPractice, Sim: sim,
		Watermark: func(v time.Time) time.Time { return minTime(v, time.Now()) }}
	week, err := feed.Run(ctx, begin.AddDate(0, 0, 7), time.Hour, nil)
	if err != nil {
		return fmt.Errorf("simulate a week: %w", err)
	}
	svc := &cutover.Service{Store: b.tgt, State: b.tgt, Clock: dtm.SystemClock{}, Logger: b.log}
	friday := time.Now().AddDate(0, 0, 15)
	for friday.Weekday() != time.Friday {
		friday = friday.AddDate(0, 0, 1)
	}
	plan, err := svc.CreatePlan(ctx, cutover.PlanRequest{Practice: demoPractice, SourceSupplier: "bench source",
		TargetSupplier: "bench target", SourceURL: b.url, Date: friday.Format(time.DateOnly), By: benchOperator})
	if err != nil {
		return fmt.Errorf("cutover plan: %w", err)
	}
	offset := plan.WindowStart.Add(time.Minute).Sub(time.Now())
	clock := dtm.ClockFunc(func() time.Time { return time.Now().Add(offset) })
	phases := &cutover.PhaseTimer{Clock: dtm.SystemClock{}}
	puller, err := b.newPuller(phases)
	if err != nil {
		return err
	}
	r := &cutover.Runner{Store: b.tgt, State: b.tgt, Puller: puller, Phases: phases,
		Freezer:    &cutover.HTTPFreezer{Source: b.url},
		Reconciler: digestReconciler(b.client, b.tgt, b.tgt, dtm.SystemClock{}, b.treeFile()),
		Clock:      clock, Logger: b.log, By: benchOperator}
	var run dtm.CutoverRun
	elapsed, peak, err := measure(func() error {
		var err error
		run, err = r.Start(ctx, plan.ID, dtm.RunCutover)
		return err
	})
	if err != nil {
		return fmt.Errorf("cutover: %w", err)
	}
	if run.State != dtm.RunAwaitingDecision || run.Reconcile == nil || !run.Reconcile.Match {
		return fmt.Errorf("cutover ended %s, reconcile %+v", run.State, run.Reconcile)
	}
	if _, err := r.Decide(ctx, run.ID, dtm.Decision{Decision: dtm.DecisionNoGo, By: benchOperator,
		Reason: "benchmark: roll back and unfreeze"}); err != nil {
		return fmt.Errorf("cutover rollback: %w", err)
	}
	ps, _ := run.Step(cutover.StepPull)
	b.add("cutover: freeze → final pull → reconcile → go/no-go", elapsed.Seconds(), "s",
		"≤ 600 (50,000 patients, a week of changes)", false, cutoverBudget.Seconds(), peak,
		fmt.Sprintf("a simulated week: %d events, %d changes; final pull %s resources; steps %s; %.4f%% of the %s window",
			week.Events, week.Applied, ps.Facts["received"], stepTimes(run), 100*elapsed.Seconds()/plan.Window().Seconds(), plan.Window()))
	return nil
}

// stepTimes lists the run's timed steps and how long each took.
func stepTimes(run dtm.CutoverRun) string {
	var parts []string
	for _, s := range run.Steps {
		if s.Status != dtm.StepDone || s.FinishedAt.IsZero() {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.2fs", s.Name, s.FinishedAt.Sub(s.StartedAt).Seconds()))
	}
	return strings.Join(parts, ", ")
}
