package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/web"
)

// The dashboard's windows: how far back the charts look.
const (
	dashChangesDays  = 14                 // changes per day
	dashLagWindow    = 7 * 24 * time.Hour // the freshness lag chart
	dashLagPoints    = 120                // at most this many points on it
	dashPulls        = 200                // pull records read per practice
	dashRetrievals   = 30 * 24 * time.Hour
	dashScanPerFetch = 50_000 // journal rows read per practice per update
)

// mountDashboard serves the dashboard h on mux at "/" (exactly), "/events"
// and "/dashboard/", and ends its event streams when ctx is done, so that
// the server's graceful shutdown does not wait for them. Routes mounted
// at "/" already (the target's FHIR API) keep every other path.
func mountDashboard(ctx context.Context, mux *http.ServeMux, h *web.Handler) {
	mux.Handle("GET /{$}", h)
	mux.Handle("GET "+web.EventsPath, h)
	mux.Handle("GET /dashboard/", h)
	context.AfterFunc(ctx, h.Close)
}

// sourceDashboard returns the Provider of "dtm source serve": per practice,
// live resources, freshness (S3, S4) and its history, changes per day,
// retrievals by the target from the audit log (when the store keeps one)
// and data issues (when it keeps them), their response times under policy.
// Reconciliation and the cutover are the target's records: the source
// shows them as not recorded.
func sourceDashboard(st dtm.Store, clock dtm.Clock, policy dtm.IssuePolicy) web.Provider {
	stats := newJournalStats(st)
	return func(ctx context.Context) (web.Dashboard, error) {
		now := clock.Now()
		d := web.Dashboard{Title: "dtm source", Role: web.RoleSource, GeneratedAt: now}
		ps, head, err := practicesAt(ctx, st)
		if err != nil {
			return d, err
		}
		for _, p := range ps {
			v, err := basePractice(ctx, st, p, head, now)
			if err != nil {
				return d, err
			}
			js, err := stats.read(ctx, p, head, now)
			if err != nil {
				return d, err
			}
			v.Changes = js.changes(now)
			v.Freshness.History = lagHistory(js.asOfEvents(), now)
			if v.Pulls, err = retrievals(ctx, st, p.ODS, now); err != nil {
				return d, err
			}
			if v.Issues, err = issuesView(ctx, st, p.ODS, policy, now); err != nil {
				return d, err
			}
			d.Practices = append(d.Practices, v)
		}
		return d, nil
	}
}

// targetDashboard returns the Provider of "dtm target serve": per
// practice, the target's copy (live resources, data as of, changes
// applied per day), pulls with their consumption times (T1, T2),
// validation findings by rule, the latest reconciliation and the cutover
// plan and runbook (when the store keeps them). Data issues live on the
// source, so the target shows them as not recorded.
func targetDashboard(st dtm.Store, state dtm.TargetState, clock dtm.Clock) web.Provider {
	stats := newJournalStats(st)
	findings := newFindingsCache(state)
	return func(ctx context.Context) (web.Dashboard, error) {
		now := clock.Now()
		d := web.Dashboard{Title: "dtm target", Role: web.RoleTarget, GeneratedAt: now}
		ps, head, err := practicesAt(ctx, st)
		if err != nil {
			return d, err
		}
		for _, p := range ps {
			v, err := basePractice(ctx, st, p, head, now)
			if err != nil {
				return d, err
			}
			js, err := stats.read(ctx, p, head, now)
			if err != nil {
				return d, err
			}
			v.Changes = js.changes(now)
			pulls, err := state.Pulls(ctx, p.ODS, dashPulls)
			if err != nil {
				return d, fmt.Errorf("dashboard: pulls: %w", err)
			}
			v.Freshness, v.Pulls = targetFreshness(pulls, now), pullsView(pulls, now)
			if v.Findings, err = findings.view(ctx, p.ODS, pulls); err != nil {
				return d, err
			}
			if v.Reconcile, err = reconcileView(ctx, st, p.ODS); err != nil {
				return d, err
			}
			if v.Cutover, err = cutoverView(ctx, st, p.ODS); err != nil {
				return d, err
			}
			d.Practices = append(d.Practices, v)
		}
		return d, nil
	}
}

// practicesAt lists the practices and the journal's head.
func practicesAt(ctx context.Context, st dtm.Store) ([]dtm.Practice, dtm.Snapshot, error) {
	ps, err := st.ListPractices(ctx)
	if err != nil {
		return nil, dtm.Snapshot{}, fmt.Errorf("dashboard: practices: %w", err)
	}
	head, err := st.Head(ctx)
	if err != nil {
		return nil, dtm.Snapshot{}, fmt.Errorf("dashboard: head: %w", err)
	}
	return ps, head, nil
}

// basePractice fills what every store knows: name, freeze, live
// resources and freshness now.
func basePractice(ctx context.Context, st dtm.Store, p dtm.Practice, head dtm.Snapshot, now time.Time) (web.PracticeView, error) {
	v := web.PracticeView{ODS: p.ODS, Name: p.Name, Frozen: p.Frozen}
	counts, err := st.Counts(ctx, p.ODS, head.Seq)
	if err != nil {
		return v, fmt.Errorf("dashboard: counts: %w", err)
	}
	for _, n := range counts {
		v.Resources += n
	}
	lag, state := dtm.Freshness(p, now)
	v.Freshness = web.FreshnessView{LastUpdated: p.LastUpdated, Watermark: p.Watermark, Lag: lag, State: state}
	return v, nil
}

// targetFreshness is the target's copy's freshness: it holds the practice
// up to the latest complete pull's transactionTime, or up to the source
// watermark read before that pull when it is later (nothing had changed
// in between); its history is a sawtooth that drops at each pull.
func targetFreshness(pulls []dtm.PullRecord, now time.Time) web.FreshnessView {
	var events []asOfEvent
	var last dtm.PullRecord
	for _, p := range slices.Backward(pulls) { // oldest first
		if p.Status != dtm.PullComplete {
			continue
		}
		last = p
		events = append(events, asOfEvent{at: p.FinishedAt, asOf: laterOf(p.TransactionTime, p.SourceWatermark)})
	}
	slices.SortFunc(events, func(a, b asOfEvent) int { return a.at.Compare(b.at) })
	lag, _ := dtm.Freshness(dtm.Practice{LastUpdated: last.TransactionTime, Watermark: last.SourceWatermark}, now)
	return web.FreshnessView{LastUpdated: last.TransactionTime, Watermark: last.SourceWatermark, Lag: lag,
		State: targetCopyState(last, now), History: lagHistory(events, now)}
}

// targetCopyState judges the target's copy by what the target must do —
// retrieve at least weekly (T2) — and by the source's freshness it
// recorded at the last pull (T3), not by the source's 6 h and 12 h limits
// (S3), which a copy refreshed by weekly pulls is not meant to meet
// between pulls. A pull due within a day, or a source that was behind at
// the last pull, is a warning; no pull within 7 days is a breach.
func targetCopyState(last dtm.PullRecord, now time.Time) string {
	since := now.Sub(last.FinishedAt)
	switch {
	case last.ID == "" || since > dtm.RetrieveWithin:
		return dtm.FreshBreach
	case since > dtm.RetrieveWithin-24*time.Hour, last.SourceFreshness == dtm.FreshWarning, last.SourceFreshness == dtm.FreshBreach:
		return dtm.FreshWarning
	}
	return dtm.FreshOK
}

// pullsView summarises the practice's pulls (newest first) for T1 and T2.
func pullsView(pulls []dtm.PullRecord, now time.Time) *web.PullsView {
	v := &web.PullsView{}
	for _, p := range pulls {
		switch p.Status {
		case dtm.PullComplete:
			if v.LastSuccess.IsZero() {
				v.LastSuccess, v.LastConsume = p.FinishedAt, p.ConsumeLatency()
			}
		case dtm.PullKickedOff, dtm.PullDownloading, dtm.PullApplying:
			if v.Pending == "" {
				v.Pending = p.ID
			}
		}
		if now.Sub(p.StartedAt) <= 24*time.Hour {
			v.Last24h++
		}
		v.Recent = append(v.Recent, web.PullView{ID: p.ID, Status: p.Status, StartedAt: p.StartedAt,
			AvailableAt: p.AvailableAt, FinishedAt: p.FinishedAt, Consume: p.ConsumeLatency(),
			Received: p.Counts.Received, Quarantined: p.Counts.Quarantined, Error: p.Error})
	}
	return v
}

// retrievals are the source's view of the target's pulls: the successful
// export kick-offs of the last 30 days in the audit log; nil when the
// store keeps no audit log or nothing was audited in that time (as with
// --auth none).
func retrievals(ctx context.Context, st dtm.Store, ods string, now time.Time) (*web.PullsView, error) {
	log, ok := st.(dtm.AuditLog)
	if !ok {
		return nil, nil
	}
	evs, err := log.AuditEvents(ctx, dtm.AuditQuery{Practice: ods, Action: dtm.AuditKickoff,
		Outcome: dtm.OutcomeSuccess, Since: now.Add(-dashRetrievals)})
	if err != nil {
		return nil, fmt.Errorf("dashboard: audit log: %w", err)
	}
	if len(evs) == 0 { // nothing audited at all (authentication off): say so, not "never retrieved"
		some, err := log.AuditEvents(ctx, dtm.AuditQuery{Since: now.Add(-dashRetrievals), Limit: 1})
		if err != nil || len(some) == 0 {
			return nil, wrapNonNil("dashboard: audit log", err)
		}
	}
	v := &web.PullsView{LastConsume: -1} // consumption is measured by the target
	for _, e := range slices.Backward(evs) {
		if v.LastSuccess.IsZero() {
			v.LastSuccess = e.Time
		}
		if now.Sub(e.Time) <= 24*time.Hour {
			v.Last24h++
		}
		v.Recent = append(v.Recent, web.PullView{ID: e.Job, Client: e.Client, Status: "kicked off", StartedAt: e.Time})
	}
	return v, nil
}

// issuesView lists the practice's data issues that are not closed, with
// their response timing under policy; nil when the store keeps no issues.
func issuesView(ctx context.Context, st dtm.Store, ods string, policy dtm.IssuePolicy, now time.Time) (*web.IssuesView, error) {
	is, ok := st.(dtm.Issues)
	if !ok {
		return nil, nil
	}
	list, err := is.ListIssues(ctx, dtm.IssueQuery{Practice: ods})
	if err != nil {
		return nil, fmt.Errorf("dashboard: issues: %w", err)
	}
	v := &web.IssuesView{}
	for _, i := range list {
		if i.Status == dtm.IssueClosed {
			v.Closed++
			continue
		}
		t := policy.Timing(i, now)
		v.Open = append(v.Open, web.IssueView{ID: i.ID, Status: i.Status, Severity: i.Severity, Category: i.Category,
			Rule: i.Rule, Title: i.Title, Resources: i.ResourceCount, RaisedAt: i.RaisedAt, Due: t.Due,
			Overdue: t.Overdue, WaitingOn: t.WaitingOn})
	}
	return v, nil
}

// reconcileView is the latest reconciliation; nil when the store keeps no
// cutover records or there is none yet.
func reconcileView(ctx context.Context, st dtm.Store, ods string) (*web.ReconcileView, error) {
	c, ok := st.(dtm.Cutovers)
	if !ok {
		return nil, nil
	}
	rs, err := c.ReconcileHistory(ctx, ods, 1)
	if err != nil || len(rs) == 0 {
		return nil, wrapNonNil("dashboard: reconciliation", err)
	}
	r := rs[0]
	return &web.ReconcileView{At: r.At, SourceAsOf: r.SourceAsOf, Method: r.Method, SourceTotal: r.SourceTotal,
		TargetTotal: r.TargetTotal, Missing: r.Missing, Extra: r.Extra, Different: r.Different,
		Quarantined: r.Quarantined, Match: r.Match}, nil
}

// cutoverView is the practice's current plan (the newest that is not
// cancelled, else the newest), its readiness confirmation and its latest
// run; an empty view when there is no plan, nil when the store keeps no
// cutover records.
func cutoverView(ctx context.Context, st dtm.Store, ods string) (*web.CutoverView, error) {
	c, ok := st.(dtm.Cutovers)
	if !ok {
		return nil, nil
	}
	plans, err := c.CutoverPlans(ctx, ods)
	if err != nil {
		return nil, fmt.Errorf("dashboard: cutover plans: %w", err)
	}
	if len(plans) == 0 {
		return &web.CutoverView{}, nil
	}
	plan := plans[0]
	if i := slices.IndexFunc(plans, func(p dtm.Plan) bool { return p.Status != dtm.PlanCancelled }); i >= 0 {
		plan = plans[i]
	}
	v := &web.CutoverView{Plan: plan.ID, Status: plan.Status, WindowStart: plan.WindowStart, GoLive: plan.GoLive,
		ReadinessDeadline: plan.ReadinessDeadline}
	confs, err := c.Confirmations(ctx, plan.ID)
	if err != nil {
		return nil, fmt.Errorf("dashboard: confirmations: %w", err)
	}
	if i := slices.IndexFunc(confs, func(c dtm.Confirmation) bool { return c.Kind == dtm.ConfirmReadiness }); i >= 0 {
		v.ReadinessAt = confs[i].At
	}
	runs, err := c.CutoverRuns(ctx, plan.ID)
	if err != nil {
		return nil, fmt.Errorf("dashboard: cutover runs: %w", err)
	}
	if len(runs) > 0 {
		r := runs[0]
		v.Run = &web.RunView{ID: r.ID, Mode: r.Mode, State: r.State}
		for _, s := range r.Steps {
			v.Run.Steps = append(v.Run.Steps, web.StepView{Name: s.Name, Status: s.Status, Duration: s.Duration()})
		}
	}
	return v, nil
}

// wrapNonNil wraps err with msg, or returns nil.
func wrapNonNil(msg string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// laterOf returns the later of a and b.
func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
