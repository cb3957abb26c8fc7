package cutover

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

// check starts a check that passes until told otherwise.
func check(id, title string, reqs ...string) Check {
	return Check{ID: id, Title: title, Requirements: reqs, Status: Pass}
}

// fail marks c failed; blocking says whether the failure blocks T6.
func (c *Check) fail(blocking bool, summary string) {
	c.Status, c.Blocking, c.Summary = Fail, blocking, summary
}

func (c *Check) warn(summary string) {
	if c.Status == Pass {
		c.Status, c.Summary = Warn, summary
	}
}

func (c *Check) add(name, value string) { c.Evidence = append(c.Evidence, Figure{name, value}) }

func checkDeadline(f Facts) Check {
	c := check("deadline", "Readiness confirmed at least 14 days before the cutover", "T6")
	c.add("cutover window", fmt.Sprintf("%s → %s (%s)", Local(f.Plan.WindowStart), Local(f.Plan.GoLive), hours(f.Plan.Window())))
	c.add("confirm by", Local(f.Plan.ReadinessDeadline))
	c.add("assessed at", Local(f.Now))
	left := f.Plan.ReadinessDeadline.Sub(f.Now)
	if left < 0 {
		c.fail(true, "the T6 deadline passed "+dur(-left)+" ago: a confirmation can no longer be recorded for this date")
		return c
	}
	c.add("time left", dur(left))
	c.Summary = "the deadline is " + dur(left) + " away"
	return c
}

func checkAuth(f Facts) Check {
	c := check("auth", "Authenticated retrieval works", "S1", "T2")
	last, ok := f.lastComplete()
	if !ok {
		c.add("last successful pull", NoEvidence)
		c.fail(true, "no pull has ever completed")
		return c
	}
	age := f.Now.Sub(last.FinishedAt)
	c.add("last successful pull", Local(last.FinishedAt)+" ("+dur(age)+" ago)")
	var denied int
	for _, p := range f.Pulls {
		if p.Status == dtm.PullFailed && p.StartedAt.After(last.StartedAt) && deniedError(p.Error) {
			denied++
		}
	}
	c.add("refused pulls since", strconv.Itoa(denied))
	switch {
	case denied > 0:
		c.fail(true, "the source refused the credentials after the last successful pull")
	case age > dtm.RetrieveWithin:
		c.fail(true, "no successful pull in the last 7 days")
	default:
		c.Summary = "a pull authorised by the source completed " + dur(age) + " ago"
	}
	return c
}

// deniedError reports whether a pull's caller-safe error says the source
// refused the credentials.
func deniedError(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "401") || strings.Contains(m, "403") || strings.Contains(m, "unauthori") || strings.Contains(m, "forbidden")
}

func checkFreshness(f Facts) Check {
	c := check("freshness", "DTM data stayed fresh (within 12 h, ideally 6 h)", "S3", "S4", "T3")
	var n, warn, breach int
	var worst time.Duration
	for _, p := range f.Pulls {
		if p.StartedAt.Before(f.Since) || p.StartedAt.After(f.Now) || p.SourceFreshness == "" {
			continue
		}
		n++
		worst = max(worst, p.SourceLag)
		switch {
		case p.SourceLag > dtm.FreshBreachAfter:
			breach++
		case p.SourceLag > dtm.FreshWarnAfter:
			warn++
		}
	}
	if n == 0 {
		c.add("freshness samples", NoEvidence)
		c.warn("no freshness was recorded at any pull in the period")
		return c
	}
	c.add("freshness samples (one per pull)", strconv.Itoa(n))
	c.add("worst lag", dur(worst))
	c.add("samples over 6 h", strconv.Itoa(warn+breach))
	c.add("samples over 12 h", strconv.Itoa(breach))
	switch {
	case breach > 0:
		c.fail(true, fmt.Sprintf("the DTM was more than 12 h behind at %d of %d pulls", breach, n))
	case warn > 0:
		c.warn(fmt.Sprintf("the DTM was more than 6 h behind at %d of %d pulls", warn, n))
	default:
		c.Summary = fmt.Sprintf("within 6 h at all %d pulls (worst %s)", n, dur(worst))
	}
	return c
}

func checkWeekly(f Facts) Check {
	c := check("weekly", "Retrieved at least once a week", "T2")
	ps := f.completePulls()
	c.add("complete pulls in period", strconv.Itoa(len(ps)))
	if len(ps) == 0 {
		c.fail(true, "no pull completed in the period")
		return c
	}
	// Gaps ending in the period, the one from the pull before it included.
	var gap time.Duration
	var prev time.Time
	for _, p := range f.Pulls {
		if p.Status != dtm.PullComplete || p.FinishedAt.After(f.Now) {
			continue
		}
		if !prev.IsZero() && !p.FinishedAt.Before(f.Since) {
			gap = max(gap, p.FinishedAt.Sub(prev))
		}
		prev = p.FinishedAt
	}
	since := f.Now.Sub(ps[len(ps)-1].FinishedAt)
	gap = max(gap, since)
	c.add("longest gap between pulls", dur(gap))
	c.add("since the last pull", dur(since))
	if gap > dtm.RetrieveWithin {
		c.fail(true, "a gap of "+dur(gap)+" between pulls exceeds 7 days")
		return c
	}
	c.Summary = fmt.Sprintf("%d pulls, never more than %s apart", len(ps), dur(gap))
	return c
}

func checkConsume(f Facts) Check {
	c := check("consume", "Every export consumed within 6 h of becoming available", "T1", "S5")
	ps := f.completePulls()
	if len(ps) == 0 {
		c.add("consume latency", NoEvidence)
		c.fail(true, "no pull completed in the period")
		return c
	}
	var worst, total time.Duration
	late := 0
	for _, p := range ps {
		l := p.ConsumeLatency()
		worst, total = max(worst, l), total+l
		if l > dtm.ConsumeWithin {
			late++
		}
	}
	c.add("pulls", strconv.Itoa(len(ps)))
	c.add("mean consume latency", dur(total/time.Duration(len(ps))))
	c.add("worst consume latency", dur(worst))
	c.add("pulls over 6 h", strconv.Itoa(late))
	if late > 0 {
		c.fail(true, fmt.Sprintf("%d pulls took more than 6 h to consume", late))
		return c
	}
	c.Summary = "all within 6 h (worst " + dur(worst) + ")"
	return c
}

func checkValidation(f Facts, o Options) Check {
	c := check("validation", "Consumed data is in the expected format", "T4", "A3")
	var received, quarantined, warnings, sourceErrors int64
	for _, p := range f.completePulls() {
		received += p.Counts.Received
		quarantined += p.Counts.Quarantined
		warnings += p.Counts.Warnings
		sourceErrors += p.Counts.SourceErrors
	}
	if received == 0 {
		c.add("resources received", NoEvidence)
		c.warn("no resources were received in the period")
		return c
	}
	rate := float64(quarantined) / float64(received)
	c.add("resources received", strconv.FormatInt(received, 10))
	c.add("quarantined", strconv.FormatInt(quarantined, 10))
	c.add("error rate", fmt.Sprintf("%.3f%% (limit %.2f%%)", 100*rate, 100*o.maxErrorRate()))
	c.add("validation warnings", strconv.FormatInt(warnings, 10))
	c.add("source error entries", strconv.FormatInt(sourceErrors, 10))
	switch {
	case rate > o.maxErrorRate():
		c.fail(true, fmt.Sprintf("%.3f%% of resources were quarantined", 100*rate))
	case quarantined > 0:
		c.warn(fmt.Sprintf("%d resources quarantined (%.3f%%): raise and resolve them as data issues", quarantined, 100*rate))
	default:
		c.Summary = "every resource received was valid"
	}
	return c
}

func checkIssues(f Facts) Check {
	c := check("issues", "Data issues raised and answered in time", "T5", "S6")
	if !f.IssuesKnown {
		c.add("open data issues", NoEvidence)
		c.warn("the data issue log was not available to this assessment")
		return c
	}
	var open, blocking, unanswered int
	for _, i := range f.Issues {
		if i.Status == dtm.IssueClosed {
			continue
		}
		open++
		if i.Severity == "fatal" || i.Severity == "error" {
			blocking++
		}
		if i.Status == dtm.IssueOpen {
			unanswered++
		}
	}
	c.add("issues raised", strconv.Itoa(len(f.Issues)))
	c.add("not closed", strconv.Itoa(open))
	c.add("not closed, error or fatal", strconv.Itoa(blocking))
	c.add("awaiting the source", strconv.Itoa(unanswered))
	switch {
	case blocking > 0:
		c.fail(true, fmt.Sprintf("%d error or fatal data issues are not closed", blocking))
	case open > 0:
		c.warn(fmt.Sprintf("%d warning issues are not closed", open))
	default:
		c.Summary = "no open data issues"
	}
	return c
}

func checkReconcile(f Facts) Check {
	c := check("reconcile", "The last reconciliation matched", "A3")
	if len(f.Reconciles) == 0 {
		c.add("last reconciliation", NoEvidence)
		c.warn("no reconciliation has been recorded: run a rehearsal")
		return c
	}
	r := f.Reconciles[0]
	c.add("last reconciliation", Local(r.At)+" ("+r.Method+")")
	c.add("source resources", strconv.FormatInt(r.SourceTotal, 10))
	c.add("target resources", strconv.FormatInt(r.TargetTotal, 10))
	c.add("missing / extra / different", fmt.Sprintf("%d / %d / %d", r.Missing, r.Extra, r.Different))
	c.add("accounted for by quarantine", strconv.FormatInt(r.Quarantined, 10))
	c.add("took", dur(r.Duration))
	if !r.Match {
		c.fail(true, "the last reconciliation found differences")
		return c
	}
	c.Summary = "matched exactly"
	if age := f.Now.Sub(r.At); age > dtm.RetrieveWithin {
		c.warn("matched, but " + dur(age) + " ago")
	}
	return c
}

func checkPrediction(p Prediction) Check {
	c := check("prediction", "Measured rates predict the cutover finishes well inside the window", "A4")
	if !p.Measured {
		c.add("measured delta pulls", NoEvidence)
		c.fail(true, "no delta pull has been measured, so the cutover time cannot be predicted")
		return c
	}
	c.add("measured delta pulls", strconv.Itoa(p.DeltaPulls))
	c.add("changes per week", strconv.FormatInt(p.WeeklyChanges, 10))
	c.add("measured delta rate", fmt.Sprintf("%.0f resources/s", p.Rate))
	c.add("final pull", dur(p.Pull))
	if p.ReconcileMeasured {
		c.add("reconcile", dur(p.Reconcile))
	} else {
		c.add("reconcile", NoEvidence)
	}
	c.add("other steps (last rehearsal)", dur(p.Other))
	c.add("predicted", fmt.Sprintf("%s of %s (%.1f%%)", dur(p.Predicted), hours(p.Window), 100*p.Share))
	c.add("margin", dur(p.Margin))
	switch {
	case p.Share > 0.5:
		c.fail(true, "the prediction uses more than half the window")
	case p.Share > 0.25:
		c.warn("the prediction uses more than a quarter of the window")
	case !p.ReconcileMeasured:
		c.warn("predicted " + dur(p.Predicted) + ", without a measured reconciliation: run a rehearsal")
	default:
		c.Summary = fmt.Sprintf("predicted %s, leaving %s of the window", dur(p.Predicted), dur(p.Margin))
	}
	return c
}
