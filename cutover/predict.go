package cutover

import (
	"time"
)

// Prediction is how long the final cutover should take, from measured
// rates (A4): a week of changes at the measured delta-pull rate, plus the
// measured reconciliation and the other steps of the last rehearsal,
// against the window.
type Prediction struct {
	Measured          bool          `json:"measured"` // at least one delta pull was measured
	DeltaPulls        int           `json:"deltaPulls"`
	WeeklyChanges     int64         `json:"weeklyChanges"` // resources changed per week, from the delta pulls
	Rate              float64       `json:"rate"`          // resources per second, pull + validate + load
	Pull              time.Duration `json:"pull"`          // predicted final pull (a week of changes)
	Reconcile         time.Duration `json:"reconcile"`
	ReconcileMeasured bool          `json:"reconcileMeasured"`
	Other             time.Duration `json:"other"` // freeze, validate, load checks, go/no-go rules (last rehearsal)
	Predicted         time.Duration `json:"predicted"`
	Window            time.Duration `json:"window"`
	Margin            time.Duration `json:"margin"`
	Share             float64       `json:"share"` // Predicted / Window
}

// Predict computes the prediction from the facts. The model is
// deliberately conservative: the rate includes each pull's fixed costs;
// the changes per week are the delta pulls' changes over the wall time
// they cover (from the pull before the first of them to the last), at
// least a day so that pulls minutes apart do not extrapolate a burst; and
// the final pull is never predicted shorter than the longest delta pull
// measured.
func Predict(f Facts) Prediction {
	p := Prediction{Window: f.Plan.Window()}
	var received int64
	var took, longest time.Duration
	var first, last time.Time // the wall time the delta pulls cover
	var prev time.Time        // start of the pull before the current one
	for _, pr := range f.completePulls() {
		if pr.Since.IsZero() || pr.StartedAt.IsZero() {
			prev = pr.StartedAt
			continue // the initial extract is not a delta
		}
		if p.DeltaPulls == 0 {
			first = prev
			if first.IsZero() {
				first = pr.Since
			}
		}
		p.DeltaPulls++
		received += pr.Counts.Received
		d := max(pr.FinishedAt.Sub(pr.StartedAt), time.Millisecond)
		took += d
		longest = max(longest, d)
		last, prev = pr.StartedAt, pr.StartedAt
	}
	if p.DeltaPulls == 0 {
		return p
	}
	p.Measured = true
	week := 7 * 24 * time.Hour
	span := max(last.Sub(first), 24*time.Hour)
	p.WeeklyChanges = int64(float64(received) * float64(week) / float64(span))
	p.Rate = float64(received) / took.Seconds()
	if p.Rate > 0 {
		p.Pull = time.Duration(float64(p.WeeklyChanges) / p.Rate * float64(time.Second))
	}
	p.Pull = max(p.Pull, longest)
	if len(f.Reconciles) > 0 {
		p.Reconcile, p.ReconcileMeasured = f.Reconciles[0].Duration, true
	}
	if r, ok := f.lastRehearsal(); ok {
		for _, s := range r.Steps {
			switch s.Name {
			case StepPull, StepReconcile, StepDecision:
			default:
				p.Other += s.Duration()
			}
		}
	}
	p.Predicted = p.Pull + p.Reconcile + p.Other
	p.Margin = p.Window - p.Predicted
	if p.Window > 0 {
		p.Share = float64(p.Predicted) / float64(p.Window)
	}
	return p
}
