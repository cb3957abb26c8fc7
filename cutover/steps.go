package cutover

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dtm-project/dtm"
)

// exec does the work of one step and returns its facts. Every step is
// idempotent: running it again after a crash reaches the same result.
func (r *Runner) exec(ctx context.Context, run *dtm.CutoverRun, plan dtm.Plan, st *dtm.RunbookStep) (map[string]string, error) {
	switch st.Name {
	case StepFreeze:
		return r.freeze(ctx, run, plan)
	case StepPull:
		return r.pull(ctx, run, plan, st)
	case StepValidate:
		return r.validate(ctx, run)
	case StepLoad:
		return r.load(ctx, run)
	case StepReconcile:
		return r.reconcile(ctx, run)
	case StepGoNoGo:
		return r.goNoGo(ctx, run, plan)
	case StepDecision:
		return r.decision(run)
	case StepGoLive:
		return r.goLive(ctx, run, plan)
	case StepRollback:
		return r.rollback(ctx, run, plan)
	}
	return nil, dtm.Errorf(dtm.EInternal, "unknown step %q", st.Name)
}

func instant(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseInstant(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// freeze stops ingest at the source (cutover) or, in a rehearsal, only
// reads the source's state, so that the step is measured without freezing.
func (r *Runner) freeze(ctx context.Context, run *dtm.CutoverRun, plan dtm.Plan) (map[string]string, error) {
	if r.Freezer == nil {
		if run.Mode == dtm.RunRehearsal {
			return nil, errSkip{"no freezer configured for the rehearsal"}
		}
		return nil, dtm.Errorf(dtm.EInvalid, "the cutover needs a freezer")
	}
	var st FreezeState
	var err error
	action := "frozen"
	if run.Mode == dtm.RunCutover {
		st, err = r.Freezer.Freeze(ctx, plan.Practice)
	} else {
		st, err = r.Freezer.State(ctx, plan.Practice)
		action = "state read only (rehearsal: not frozen)"
	}
	if err != nil {
		return nil, err
	}
	if run.Mode == dtm.RunCutover && !st.Frozen {
		return nil, dtm.Errorf(dtm.EUnavailable, "the source did not freeze practice %s", plan.Practice)
	}
	return map[string]string{
		"action": action, "frozen": strconv.FormatBool(st.Frozen), "watermark": instant(st.Watermark),
		"last_updated": instant(st.LastUpdated), "transaction_time": instant(st.TransactionTime),
	}, nil
}

// pull runs the final delta pull. A pull that completed after the step
// first started (before a crash could record it) is adopted rather than
// run again.
func (r *Runner) pull(ctx context.Context, run *dtm.CutoverRun, plan dtm.Plan, st *dtm.RunbookStep) (map[string]string, error) {
	after := parseInstant(st.Facts["requested_after"])
	if after.IsZero() {
		after = st.StartedAt
		st.Facts = map[string]string{"requested_after": instant(after)}
		if err := r.save(ctx, run); err != nil {
			return nil, err
		}
	}
	pulls, err := r.State.Pulls(ctx, plan.Practice, 20)
	if err != nil {
		return nil, fmt.Errorf("pulls: %w", err)
	}
	var rec dtm.PullRecord
	adopted := false
	for _, p := range pulls {
		if p.Status == dtm.PullComplete && !p.StartedAt.Before(after) {
			rec, adopted = p, true
			break
		}
	}
	// In the cutover the final pull must cover the freeze: a pull that
	// resumed an export started before it (a scheduled pull that was in
	// flight at 17:00) is followed by another.
	fs, _ := run.Step(StepFreeze)
	frozenAt := time.Time{}
	if run.Mode == dtm.RunCutover {
		frozenAt = parseInstant(fs.Facts["transaction_time"])
	}
	resumed := false
	for attempt := 0; !adopted && attempt < 3; attempt++ {
		if r.Phases != nil {
			r.Phases.Reset()
		}
		res, err := r.Puller.Pull(ctx, plan.Practice)
		if err != nil {
			return nil, err
		}
		rec, resumed = res.PullRecord, resumed || res.Resumed
		if !rec.TransactionTime.Before(frozenAt) {
			break
		}
		r.log().Warn("the final pull ended before the freeze; pulling again", "run", run.ID, "pull", rec.ID)
	}
	c := rec.Counts
	took := rec.FinishedAt.Sub(rec.StartedAt)
	f := map[string]string{
		"requested_after": instant(after), "pull": rec.ID, "adopted": strconv.FormatBool(adopted),
		"resumed": strconv.FormatBool(resumed), "since": instant(rec.Since), "transaction_time": instant(rec.TransactionTime),
		"received": i64(c.Received), "applied": i64(c.Applied), "skipped": i64(c.Skipped), "deleted": i64(c.Deleted),
		"quarantined": i64(c.Quarantined), "files": i64(c.Files), "bytes": i64(c.Bytes),
		"pull_seconds": fmt.Sprintf("%.3f", took.Seconds()), "source_freshness": rec.SourceFreshness,
		"source_lag": dur(rec.SourceLag),
	}
	if took > 0 {
		f["resources_per_second"] = fmt.Sprintf("%.0f", float64(c.Received)/took.Seconds())
	}
	if r.Phases != nil && !adopted {
		for _, ph := range []string{"download", "apply", "attachments"} {
			if d, _, ok := r.Phases.Took(ph); ok {
				f["phase_"+ph] = dur(d)
			}
		}
	}
	return f, nil
}

// pullRecord returns the pull the run's pull step recorded.
func (r *Runner) pullRecord(ctx context.Context, run *dtm.CutoverRun) (dtm.PullRecord, map[string]string, error) {
	ps, _ := run.Step(StepPull)
	if ps.Status != dtm.StepDone || ps.Facts["pull"] == "" {
		return dtm.PullRecord{}, nil, dtm.Errorf(dtm.EConflict, "the pull step has not completed")
	}
	rec, err := r.State.Pull(ctx, ps.Facts["pull"])
	if err != nil {
		return dtm.PullRecord{}, nil, fmt.Errorf("pull record: %w", err)
	}
	return rec, ps.Facts, nil
}

// validate records what validation found in the final pull (it ran inside
// the pull, resource by resource): quarantine by reason, warnings, errors.
func (r *Runner) validate(ctx context.Context, run *dtm.CutoverRun) (map[string]string, error) {
	rec, pf, err := r.pullRecord(ctx, run)
	if err != nil {
		return nil, err
	}
	byReason := map[string]int64{}
	err = r.State.Quarantined(ctx, rec.Practice, rec.ID, func(q dtm.QuarantineRecord) error {
		byReason[q.Reason]++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	c := rec.Counts
	f := map[string]string{
		"received": i64(c.Received), "quarantined": i64(c.Quarantined), "warnings": i64(c.Warnings),
		"source_errors": i64(c.SourceErrors), "attachments": i64(c.Attachments),
		"attachment_problems": i64(c.AttachmentProblems),
	}
	for reason, n := range byReason {
		f["quarantined_"+reason] = i64(n)
	}
	if c.Received > 0 {
		f["error_rate"] = fmt.Sprintf("%.4f%%", 100*float64(c.Quarantined)/float64(c.Received))
	}
	if d, ok := pf["phase_apply"]; ok {
		f["measured_in_pull"] = "apply phase " + d
	}
	return f, nil
}

// load checks that everything received was applied, skipped or
// quarantined (invariant 5) and that the checkpoint advanced to the final
// pull's transactionTime (invariant 4).
func (r *Runner) load(ctx context.Context, run *dtm.CutoverRun) (map[string]string, error) {
	rec, pf, err := r.pullRecord(ctx, run)
	if err != nil {
		return nil, err
	}
	c := rec.Counts
	if c.Received != c.Applied+c.Skipped+c.Quarantined {
		return nil, dtm.Errorf(dtm.EConflict, "counts do not reconcile: received %d, applied %d, skipped %d, quarantined %d",
			c.Received, c.Applied, c.Skipped, c.Quarantined)
	}
	cp, err := r.State.Checkpoint(ctx, rec.Source, rec.Practice)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !cp.TransactionTime.Equal(rec.TransactionTime) {
		return nil, dtm.Errorf(dtm.EConflict, "the checkpoint is at %s, not at the final pull's %s",
			instant(cp.TransactionTime), instant(rec.TransactionTime))
	}
	f := map[string]string{
		"applied": i64(c.Applied), "skipped": i64(c.Skipped), "deleted": i64(c.Deleted), "quarantined": i64(c.Quarantined),
		"checkpoint": instant(cp.TransactionTime), "counts_reconcile": "true",
	}
	for _, ph := range []string{"apply", "attachments"} {
		if d, ok := pf["phase_"+ph]; ok {
			f["measured_in_pull_"+ph] = d
		}
	}
	return f, nil
}

// reconcile compares source and target at the final pull's snapshot.
func (r *Runner) reconcile(ctx context.Context, run *dtm.CutoverRun) (map[string]string, error) {
	if r.Reconciler == nil {
		return nil, dtm.Errorf(dtm.EInvalid, "no reconciler configured")
	}
	rec, _, err := r.pullRecord(ctx, run)
	if err != nil {
		return nil, err
	}
	s, err := r.Reconciler.Reconcile(ctx, rec.Practice, rec.TransactionTime)
	if err != nil {
		return nil, err
	}
	s.Run = run.ID
	if err := r.Store.RecordReconcile(ctx, s); err != nil {
		return nil, fmt.Errorf("record reconcile: %w", err)
	}
	run.Reconcile = &s
	return map[string]string{
		"match": strconv.FormatBool(s.Match), "method": s.Method, "source_as_of": instant(s.SourceAsOf),
		"source_total": i64(s.SourceTotal), "target_total": i64(s.TargetTotal), "missing": i64(s.Missing),
		"extra": i64(s.Extra), "different": i64(s.Different), "quarantined": i64(s.Quarantined),
		"source_root": s.SourceRoot, "target_root": s.TargetRoot, "took": dur(s.Duration),
	}, nil
}

// goNoGo evaluates the automatic rules.
func (r *Runner) goNoGo(ctx context.Context, run *dtm.CutoverRun, plan dtm.Plan) (map[string]string, error) {
	confs, err := r.Store.Confirmations(ctx, plan.ID)
	if err != nil {
		return nil, fmt.Errorf("confirmations: %w", err)
	}
	rules := Rules(*run, plan, confs, r.Clock.Now())
	return RuleFacts(rules), nil
}

// decision waits for a person in a cutover and does not apply to a
// rehearsal.
func (r *Runner) decision(run *dtm.CutoverRun) (map[string]string, error) {
	if run.Mode == dtm.RunRehearsal {
		return nil, errSkip{"a rehearsal takes no decision"}
	}
	if run.Decision == nil {
		return nil, errAwait
	}
	d := run.Decision
	return map[string]string{"decision": d.Decision, "by": d.By, "role": d.Role, "reason": d.Reason, "at": instant(d.At)}, nil
}

// goLive marks the plan live after a go decision.
func (r *Runner) goLive(ctx context.Context, run *dtm.CutoverRun, plan dtm.Plan) (map[string]string, error) {
	switch {
	case run.Mode == dtm.RunRehearsal:
		return nil, errSkip{"a rehearsal does not go live"}
	case run.Decision == nil || run.Decision.Decision != dtm.DecisionGo:
		return nil, errSkip{"no-go"}
	}
	now := r.Clock.Now()
	if plan.Status != dtm.PlanLive {
		plan.Status, plan.UpdatedAt = dtm.PlanLive, now
		if err := r.Store.SaveCutoverPlan(ctx, plan); err != nil {
			return nil, fmt.Errorf("plan live: %w", err)
		}
	}
	return map[string]string{"live_at": instant(now), "go_live_deadline": instant(plan.GoLive),
		"ahead_of_go_live": dur(plan.GoLive.Sub(now)), "window_used": dur(now.Sub(plan.WindowStart))}, nil
}

// rollback unfreezes the source after a no-go.
func (r *Runner) rollback(ctx context.Context, run *dtm.CutoverRun, plan dtm.Plan) (map[string]string, error) {
	switch {
	case run.Mode == dtm.RunRehearsal:
		return nil, errSkip{"a rehearsal froze nothing"}
	case run.Decision != nil && run.Decision.Decision == dtm.DecisionGo:
		return nil, errSkip{"went live"}
	}
	st, err := r.Freezer.Unfreeze(ctx, plan.Practice)
	if err != nil {
		return nil, err
	}
	if plan.Status != dtm.PlanRolledBack {
		plan.Status, plan.UpdatedAt = dtm.PlanRolledBack, r.Clock.Now()
		if err := r.Store.SaveCutoverPlan(ctx, plan); err != nil {
			return nil, fmt.Errorf("plan rolled back: %w", err)
		}
	}
	return map[string]string{"frozen": strconv.FormatBool(st.Frozen), "watermark": instant(st.Watermark)}, nil
}
