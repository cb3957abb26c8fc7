package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/cutover"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
)

// pullEvery is the demo target's pull interval in days: at least weekly (T2).
const pullEvery = 6

// The people of the demo's story (all fictional).
const (
	demoSourceSupplier = "Old Systems Ltd (synthetic)"
	demoTargetSupplier = "New Systems plc (synthetic)"
	demoOperator       = "Olu Operator, TSS migration lead"
)

// story runs the migration: the plan, the initial extract, weeks of
// activity with weekly pulls and a data issue raised and answered,
// readiness confirmed at T-14 days, a rehearsal, and the weekend cutover.
func (d *demo) story(ctx context.Context) error {
	d.say("Source DTM listening on %s (SMART Backend Services auth); stores in %s", d.url, d.dir)
	d.say("Dashboards, live from now on: source %s/  target %s/", d.dashes[0], d.dashes[1])
	if err := d.loadPractice(ctx); err != nil {
		return err
	}
	if err := d.registerTarget(ctx); err != nil {
		return err
	}
	plan, err := d.plan(ctx)
	if err != nil {
		return err
	}
	d.say("Initial extract (A3): the target pulls the whole practice")
	if err := d.pullAndReconcile(ctx); err != nil {
		return err
	}
	sim, err := synth.NewSimulator(d.synthOptions(), d.o.seed, d.clock.Now())
	if err != nil {
		return err
	}
	d.feed = &source.Feed{Store: d.src, Practice: demoPractice, Sim: sim, Advance: d.clock.Set}
	badPatient, err := d.injectBadRecord(ctx, demoStart.Add(25*time.Hour))
	if err != nil {
		return err
	}
	// Pulls every 6 days (at least weekly, T2) until the cutover; the
	// rehearsal and the readiness confirmation fall in between.
	readinessAt := plan.ReadinessDeadline.Add(-2 * 24 * time.Hour)
	confirmed := false
	for n := 1; ; n++ {
		at := demoStart.AddDate(0, 0, pullEvery*n)
		if !at.Before(plan.WindowStart.Add(-24 * time.Hour)) {
			break
		}
		if !confirmed && readinessAt.Before(at) {
			if err := d.rehearseAndConfirm(ctx, plan, readinessAt); err != nil {
				return err
			}
			confirmed = true
		}
		if err := d.live(ctx, at); err != nil {
			return err
		}
		d.say("%d days of practice activity (%d registered patients); scheduled pull", pullEvery*n, sim.Registered())
		if err := d.pullAndReconcile(ctx); err != nil {
			return err
		}
		if n == 1 {
			if err := d.answerIssues(ctx, badPatient); err != nil {
				return err
			}
		}
	}
	run, err := d.cutover(ctx, plan)
	if err != nil {
		return err
	}
	return d.summary(ctx, run)
}

// live simulates the practice until t.
func (d *demo) live(ctx context.Context, t time.Time) error {
	_, err := d.feed.Run(ctx, t, time.Hour, nil)
	d.clock.Set(t)
	return err
}

// plan records the migration plan: the cutover on the Friday after the
// simulated weeks.
func (d *demo) plan(ctx context.Context) (dtm.Plan, error) {
	friday := demoStart.AddDate(0, 0, 7*d.o.weeks+4)
	plan, err := d.svc.CreatePlan(ctx, cutover.PlanRequest{Practice: demoPractice, SourceSupplier: demoSourceSupplier,
		TargetSupplier: demoTargetSupplier, SourceURL: d.url, Date: friday.Format(time.DateOnly), By: demoOperator})
	if err != nil {
		return plan, fmt.Errorf("plan: %w", err)
	}
	d.say("Migration plan: cutover window %s → %s (%s), readiness to be confirmed by %s (T6)",
		plan.WindowStart.In(london).Format("Mon 02 Jan 15:04"), plan.GoLive.In(london).Format("Mon 02 Jan 15:04"),
		plan.Window(), plan.ReadinessDeadline.In(london).Format("Mon 02 Jan"))
	return plan, nil
}

// pullAndReconcile pulls, reports validation findings to the source as data
// issues (T5), and reconciles the target with the source.
func (d *demo) pullAndReconcile(ctx context.Context) error {
	if _, err := d.pull(ctx); err != nil {
		return err
	}
	_, raised, err := d.puller.ReportIssues(ctx, demoPractice)
	if err != nil {
		return fmt.Errorf("report issues: %w", err)
	}
	if n := len(raised.Raised) + len(raised.Updated) + len(raised.Closed); n > 0 {
		d.say("Data issues with the source (T5): %d raised, %d updated, %d closed", len(raised.Raised), len(raised.Updated), len(raised.Closed))
	}
	rep, err := target.Reconcile(ctx, d.client, d.tgt, demoPractice, target.ReconcileOptions{State: d.tgt, Clock: d.clock, TreeFile: d.treeFile()})
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	d.say("Reconciled: %s — source %d resources, target %d, root %.12s…", rep.Result, rep.SourceDigest.Total, rep.TargetDigest.Total, rep.SourceDigest.Root)
	return nil
}

// injectBadRecord has the source system record an NHS number with a wrong
// check digit at t, as a real practice occasionally does, and returns the
// patient's correct record for the fix.
func (d *demo) injectBadRecord(ctx context.Context, t time.Time) (dtm.Change, error) {
	if err := d.live(ctx, t); err != nil {
		return dtm.Change{}, err
	}
	good, err := d.src.Get(ctx, demoPractice, "Patient", "pat-000003")
	if err != nil {
		return good, err
	}
	const system = `"system":"https://fhir.nhs.uk/Id/nhs-number","value":"`
	i := bytes.Index(good.JSON, []byte(system))
	if i < 0 {
		return good, fmt.Errorf("patient pat-000003 has no NHS number")
	}
	bad := bytes.Clone(good.JSON)
	last := i + len(system) + 9
	bad[last] = '0' + (bad[last]-'0'+1)%10 // a wrong check digit
	w, err := source.ResourceWrite(bad)
	if err != nil {
		return good, err
	}
	if _, err := d.src.Apply(ctx, demoPractice, []dtm.Write{w}); err != nil {
		return good, err
	}
	d.say("The source system records an NHS number with a wrong check digit for Patient/pat-000003")
	return good, nil
}

// answerIssues is the source supplier's service desk answering the open
// data issues (S6), and the source system correcting the record.
func (d *demo) answerIssues(ctx context.Context, good dtm.Change) error {
	open, err := d.src.ListIssues(ctx, dtm.IssueQuery{Practice: demoPractice, Statuses: []string{dtm.IssueOpen}})
	if err != nil {
		return err
	}
	for _, is := range open {
		for _, a := range []dtm.IssueAction{
			{Action: dtm.IssueAcknowledge, Actor: "SSS service desk", At: d.clock.Now(), Text: "Looking into it."},
			{Action: dtm.IssueResolve, Actor: "SSS service desk", At: d.clock.Now().Add(2 * time.Hour), Text: "Corrected in the clinical system; the fix is in the DTM."},
		} {
			d.clock.Set(a.At)
			if _, err := d.src.UpdateIssue(ctx, demoPractice, is.ID, a); err != nil {
				return fmt.Errorf("answer issue %s: %w", is.ID, err)
			}
		}
		d.say("The source supplier acknowledged and resolved data issue %s (%s) (S6)", is.ID, is.Title)
	}
	w, err := source.ResourceWrite(good.JSON)
	if err != nil {
		return err
	}
	_, err = d.src.Apply(ctx, demoPractice, []dtm.Write{w})
	return err
}

// rehearseAndConfirm rehearses the runbook, assesses readiness from the
// recorded facts and records the signed confirmation and both suppliers'
// statements, at readinessAt (before the T-14 deadline).
func (d *demo) rehearseAndConfirm(ctx context.Context, plan dtm.Plan, readinessAt time.Time) error {
	if err := d.live(ctx, readinessAt.Add(-24*time.Hour)); err != nil {
		return err
	}
	run, err := d.runner().Start(ctx, plan.ID, dtm.RunRehearsal)
	if err != nil {
		return fmt.Errorf("rehearsal: %w", err)
	}
	d.say("Rehearsal (A4): %s in %s; reconcile match %v", run.State, run.FinishedAt.Sub(run.StartedAt).Round(time.Second), run.Reconcile != nil && run.Reconcile.Match)
	if err := d.live(ctx, readinessAt); err != nil {
		return err
	}
	rep, err := d.svc.Readiness(ctx, demoPractice)
	if err != nil {
		return fmt.Errorf("readiness: %w", err)
	}
	var text strings.Builder
	rep.WriteText(&text)
	if !rep.Ready {
		return fmt.Errorf("readiness assessment failed:\n%s", text.String())
	}
	d.say("Readiness (T6) from recorded facts: ready, %d checks; predicted cutover %s of the %s window",
		len(rep.Checks), rep.Prediction.Predicted.Round(time.Second), plan.Window())
	for _, s := range []struct{ kind, name, org string }{
		{dtm.ConfirmReadiness, "Jo Bloggs", demoTargetSupplier},
		{dtm.ConfirmSourceStatement, "Ann Other", demoSourceSupplier},
		{dtm.ConfirmTargetStatement, "Jo Bloggs", demoTargetSupplier},
	} {
		if _, _, err := d.svc.Confirm(ctx, cutover.ConfirmRequest{Practice: demoPractice, Kind: s.kind, Name: s.name,
			Role: "Migration lead", Organisation: s.org}); err != nil {
			return fmt.Errorf("confirm %s: %w", s.kind, err)
		}
	}
	d.say("Readiness confirmed in writing by the target, and both suppliers stated the weekend cutover can be done")
	return nil
}

// cutover runs the weekend: activity until Friday 17:00, then the runbook,
// the go decision, and go-live.
func (d *demo) cutover(ctx context.Context, plan dtm.Plan) (dtm.CutoverRun, error) {
	if err := d.live(ctx, plan.WindowStart); err != nil {
		return dtm.CutoverRun{}, err
	}
	d.say("Friday 17:00: the cutover starts — freeze, final delta pull, validate, load, reconcile")
	r := d.runner()
	run, err := r.Start(ctx, plan.ID, dtm.RunCutover)
	if err != nil {
		return run, fmt.Errorf("cutover: %w", err)
	}
	if run.State != dtm.RunAwaitingDecision {
		return run, fmt.Errorf("cutover stopped in state %s", run.State)
	}
	d.clock.Set(d.clock.Now().Add(20 * time.Minute))
	run, err = r.Decide(ctx, run.ID, dtm.Decision{Decision: dtm.DecisionGo, By: "Dee Cider", Role: "Practice manager",
		Reason: "reconciled exactly; every rule passed"})
	if err != nil {
		return run, fmt.Errorf("go decision: %w", err)
	}
	events, err := d.tgt.RunEvents(ctx, run.ID)
	if err != nil {
		return run, err
	}
	var timeline strings.Builder
	if err := cutover.WriteTimeline(&timeline, run, events); err != nil {
		return run, err
	}
	d.say("Cutover %s; timeline:\n%s", run.State, timeline.String())
	return run, nil
}

// runner returns a cutover runner as the target supplier's operator runs it.
func (d *demo) runner() *cutover.Runner {
	return &cutover.Runner{Store: d.tgt, State: d.tgt, Puller: d.puller, Phases: d.phases,
		Freezer:    cutover.StoreFreezer{Store: d.src},
		Reconciler: digestReconciler(d.client, d.tgt, d.tgt, d.clock, d.treeFile()),
		Clock:      d.clock, Logger: d.log, By: demoOperator}
}

// summary prints the end state.
func (d *demo) summary(ctx context.Context, run dtm.CutoverRun) error {
	rec := run.Reconcile
	if rec == nil {
		return fmt.Errorf("the cutover recorded no reconciliation")
	}
	issues, err := d.src.ListIssues(ctx, dtm.IssueQuery{Practice: demoPractice})
	if err != nil {
		return err
	}
	d.say("Summary: source holds %d resources, target holds %d (%d quarantined); reconciliation match %v; %d data issue(s) raised; cutover %s; %.0fs of real time",
		rec.SourceTotal, rec.TargetTotal, rec.Quarantined, rec.Match, len(issues), run.State, time.Since(d.started).Seconds())
	if !rec.Match {
		return errFindings
	}
	return nil
}
