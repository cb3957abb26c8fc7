package cutover

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dtm-project/dtm"
)

// Facts are the recorded facts a readiness assessment is made from. They
// hold no patient data.
type Facts struct {
	Plan dtm.Plan
	Now  time.Time
	// Since is the start of the assessed period (Now less Options.Days).
	Since time.Time
	// Pulls are the practice's pull records, oldest first, every status.
	Pulls []dtm.PullRecord
	// Reconciles are reconciliation outcomes, newest first.
	Reconciles []dtm.ReconcileSummary
	// Runs are the plan's runbook runs (rehearsals and cutover), newest first.
	Runs []dtm.CutoverRun
	// Issues are the practice's data issues; IssuesKnown is false when no
	// issue store was available (no evidence, rather than no issues).
	Issues      []dtm.DataIssue
	IssuesKnown bool
}

// maxPulls bounds the pull records read for one assessment: a practice
// pulled hourly for a year stays within it.
const maxPulls = 10_000

// Gather reads the facts about plan at now from the service's stores.
func (s *Service) Gather(ctx context.Context, plan dtm.Plan) (Facts, error) {
	now := s.Clock.Now()
	f := Facts{Plan: plan, Now: now, Since: now.Add(-time.Duration(s.Options.days()) * 24 * time.Hour)}
	pulls, err := s.State.Pulls(ctx, plan.Practice, maxPulls)
	if err != nil {
		return Facts{}, fmt.Errorf("gather facts: %w", err)
	}
	slices.Reverse(pulls)
	f.Pulls = pulls
	if f.Reconciles, err = s.Store.ReconcileHistory(ctx, plan.Practice, 50); err != nil {
		return Facts{}, fmt.Errorf("gather facts: %w", err)
	}
	if f.Runs, err = s.Store.CutoverRuns(ctx, plan.ID); err != nil {
		return Facts{}, fmt.Errorf("gather facts: %w", err)
	}
	if s.Issues != nil {
		if f.Issues, err = s.Issues.ListIssues(ctx, dtm.IssueQuery{Practice: plan.Practice}); err != nil {
			return Facts{}, fmt.Errorf("gather facts: %w", err)
		}
		f.IssuesKnown = true
	}
	return f, nil
}

// completePulls returns the complete pulls that finished in [since, now],
// oldest first.
func (f Facts) completePulls() []dtm.PullRecord {
	var out []dtm.PullRecord
	for _, p := range f.Pulls {
		if p.Status == dtm.PullComplete && !p.FinishedAt.Before(f.Since) && !p.FinishedAt.After(f.Now) {
			out = append(out, p)
		}
	}
	return out
}

// lastComplete returns the latest complete pull at or before now.
func (f Facts) lastComplete() (dtm.PullRecord, bool) {
	var last dtm.PullRecord
	for _, p := range f.Pulls {
		if p.Status == dtm.PullComplete && !p.FinishedAt.After(f.Now) && p.FinishedAt.After(last.FinishedAt) {
			last = p
		}
	}
	return last, last.ID != ""
}

// lastRehearsal returns the newest finished rehearsal.
func (f Facts) lastRehearsal() (dtm.CutoverRun, bool) {
	for _, r := range f.Runs {
		if r.Mode == dtm.RunRehearsal && r.State == dtm.RunRehearsed {
			return r, true
		}
	}
	return dtm.CutoverRun{}, false
}
