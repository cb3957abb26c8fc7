package web

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

// maxPullRows, maxIssueRows and maxRuleRows bound the tables.
const (
	maxPullRows  = 10
	maxIssueRows = 20
	maxRuleRows  = 15
)

// page is the template's model of the whole dashboard: every figure
// already formatted.
type page struct {
	Title     string
	Role      string
	RoleLabel string
	Generated timeText
	Clock     string // time of day of Generated, for the live status
	Error     string // caller-safe: the figures could not be read
	Practices []practicePage
	NavHash   string // see practicePage.Hash
	Static    string // path prefix of the CSS and JS
	Events    string // path of the event stream
}

// practicePage is one practice's section.
type practicePage struct {
	ID string // the section's element id
	// Hash identifies the section's content (rendered without it), so
	// that the script replaces only the sections that changed.
	Hash      string
	ODS       string
	Name      string
	Heading   string
	Frozen    bool
	Resources string
	Target    bool // the target's wording

	Fresh      badge
	Lag        string
	Updated    timeText
	Watermark  timeText
	LagChart   chart
	LagHistory []pointRow

	Changes     *chart
	ChangesRows []dayRow

	Pulls *pullsPage
	Find  *findingsPage
	Iss   *issuesPage
	Rec   *reconcilePage
	Cut   *cutoverPage
}

type pointRow struct {
	At  timeText
	Lag string
}

type dayRow struct {
	Day   string
	Count string
}

type pullsPage struct {
	T1, T2      badge
	LastConsume string
	SinceLast   string
	LastSuccess timeText
	Last24h     int
	Pending     string
	Rows        []pullRow
	More        int
}

type pullRow struct {
	ID, Client, Status          string
	Started                     timeText
	Consume                     string
	ConsumeOK                   badge
	Received, Quarantined, Errs string
}

type findingsPage struct {
	Quarantined, Warnings string
	Rows                  []ruleRow
	More                  int
}

type ruleRow struct{ Rule, Reason, Count string }

type issuesPage struct {
	Open, Overdue int
	Closed        int
	Rows          []issueRow
	More          int
}

type issueRow struct {
	ID, Status, Severity, Category, Rule, Title string
	Resources                                   string
	Raised                                      timeText
	Age                                         string
	Due                                         timeText
	Overdue                                     bool
	WaitingOn                                   string
}

type reconcilePage struct {
	Result                                                      badge
	At, SourceAsOf                                              timeText
	Method                                                      string
	SourceTotal, TargetTotal, Missing, Extra, Different, Quaran string
}

type cutoverPage struct {
	Plan, Status         string
	Countdown            string
	Phase                badge
	WindowStart, GoLive  timeText
	Deadline, Readiness  timeText
	ReadinessOK          badge
	Run                  *RunView
	Steps                []stepRow
	Done, Total, Percent int
}

type stepRow struct {
	N             int
	Name, Status  string
	StatusClass   string
	Duration      string
	DurationKnown bool
}

// buildPage formats d for the templates. It never fails: missing figures
// become "never", "not recorded yet" or an empty chart.
func buildPage(d Dashboard, static, events string) page {
	p := page{Title: cmp.Or(d.Title, "dtm"), Role: d.Role, Generated: fmtTime(d.GeneratedAt),
		Clock: fmtClock(d.GeneratedAt), Static: static, Events: events}
	switch d.Role {
	case RoleSource:
		p.RoleLabel = "Source DTM"
	case RoleTarget:
		p.RoleLabel = "Target"
	default:
		p.RoleLabel = "DTM"
	}
	for _, v := range d.Practices {
		p.Practices = append(p.Practices, buildPractice(v, d.Role == RoleTarget, d.GeneratedAt))
	}
	return p
}

func buildPractice(v PracticeView, target bool, now time.Time) practicePage {
	id := "p-" + v.ODS
	pp := practicePage{ID: id, ODS: v.ODS, Name: v.Name, Frozen: v.Frozen, Target: target,
		Resources: fmtCount(v.Resources), Heading: v.ODS}
	if v.Name != "" && v.Name != v.ODS {
		pp.Heading = v.ODS + " — " + v.Name
	}
	f := v.Freshness
	pp.Fresh, pp.Lag = freshnessBadge(f.State, target), fmtDuration(f.Lag)
	if f.LastUpdated.IsZero() && f.Watermark.IsZero() {
		pp.Lag = "never updated"
	}
	pp.Updated, pp.Watermark = fmtTime(f.LastUpdated), fmtTime(f.Watermark)
	pp.LagChart = lagChart(id+"-lag", f.History, now, target)
	for _, pt := range f.History {
		pp.LagHistory = append(pp.LagHistory, pointRow{fmtTime(pt.At), fmtHours(pt.Value)})
	}
	if v.Changes != nil {
		c := changesChart(id+"-changes", v.Changes.Days)
		pp.Changes = &c
		for _, d := range v.Changes.Days {
			pp.ChangesRows = append(pp.ChangesRows, dayRow{d.Day.In(dtm.London()).Format("Mon 2 Jan 2006"), fmtCount(d.Count)})
		}
	}
	if v.Pulls != nil {
		pp.Pulls = buildPulls(*v.Pulls, now)
	}
	if v.Findings != nil {
		pp.Find = buildFindings(*v.Findings)
	}
	if v.Issues != nil {
		pp.Iss = buildIssues(*v.Issues, now)
	}
	if v.Reconcile != nil {
		pp.Rec = buildReconcile(*v.Reconcile)
	}
	if v.Cutover != nil {
		pp.Cut = buildCutover(*v.Cutover, now)
	}
	return pp
}

func buildPulls(v PullsView, now time.Time) *pullsPage {
	p := &pullsPage{LastSuccess: fmtTime(v.LastSuccess), Last24h: v.Last24h, Pending: v.Pending}
	switch {
	case v.LastConsume < 0:
		p.LastConsume, p.T1 = "not known here", badge{"neutral", "Measured by the target"}
	case v.LastSuccess.IsZero():
		p.LastConsume, p.T1 = "no complete pull yet", badge{"neutral", "Unknown"}
	default:
		p.LastConsume, p.T1 = fmtDuration(v.LastConsume), okBadge(v.LastConsume <= dtm.ConsumeWithin, "Breach: over 6 h")
	}
	if v.LastSuccess.IsZero() {
		p.SinceLast, p.T2 = "never retrieved", badge{"breach", "Breach: never retrieved"}
	} else {
		since := max(now.Sub(v.LastSuccess), 0)
		p.SinceLast, p.T2 = fmtDays(since), okBadge(since <= dtm.RetrieveWithin, "Breach: over 7 days")
	}
	rows := v.Recent
	if len(rows) > maxPullRows {
		p.More, rows = len(rows)-maxPullRows, rows[:maxPullRows]
	}
	for _, r := range rows {
		row := pullRow{ID: r.ID, Client: r.Client, Status: r.Status, Started: fmtTime(r.StartedAt), Consume: "—",
			Received: fmtCount(r.Received), Quarantined: fmtCount(r.Quarantined), Errs: r.Error}
		if r.Status == dtm.PullComplete && !r.AvailableAt.IsZero() {
			row.Consume = fmtDuration(r.Consume)
			row.ConsumeOK = okBadge(r.Consume <= dtm.ConsumeWithin, "over 6 h")
		}
		p.Rows = append(p.Rows, row)
	}
	return p
}

func buildFindings(v FindingsView) *findingsPage {
	f := &findingsPage{Quarantined: fmtCount(v.Quarantined), Warnings: fmtCount(v.Warnings)}
	rows := slices.Clone(v.Rules)
	slices.SortStableFunc(rows, func(a, b RuleCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Rule, b.Rule))
	})
	if len(rows) > maxRuleRows {
		f.More, rows = len(rows)-maxRuleRows, rows[:maxRuleRows]
	}
	for _, r := range rows {
		f.Rows = append(f.Rows, ruleRow{cmp.Or(r.Rule, "—"), r.Reason, fmtCount(r.Count)})
	}
	return f
}

func buildIssues(v IssuesView, now time.Time) *issuesPage {
	p := &issuesPage{Open: len(v.Open), Closed: v.Closed}
	rows := slices.Clone(v.Open)
	slices.SortStableFunc(rows, func(a, b IssueView) int { return a.RaisedAt.Compare(b.RaisedAt) })
	for _, i := range rows {
		if i.Overdue {
			p.Overdue++
		}
	}
	if len(rows) > maxIssueRows {
		p.More, rows = len(rows)-maxIssueRows, rows[:maxIssueRows]
	}
	for _, i := range rows {
		p.Rows = append(p.Rows, issueRow{ID: i.ID, Status: i.Status, Severity: i.Severity, Category: i.Category,
			Rule: i.Rule, Title: i.Title, Resources: fmtCount(int64(i.Resources)), Raised: fmtTime(i.RaisedAt),
			Age: fmtDuration(max(now.Sub(i.RaisedAt), 0)), Due: fmtTime(i.Due), Overdue: i.Overdue, WaitingOn: i.WaitingOn})
	}
	return p
}

func buildReconcile(v ReconcileView) *reconcilePage {
	r := &reconcilePage{At: fmtTime(v.At), SourceAsOf: fmtTime(v.SourceAsOf), Method: v.Method,
		SourceTotal: fmtCount(v.SourceTotal), TargetTotal: fmtCount(v.TargetTotal), Missing: fmtCount(v.Missing),
		Extra: fmtCount(v.Extra), Different: fmtCount(v.Different), Quaran: fmtCount(v.Quarantined)}
	r.Result = okBadge(v.Match, "Mismatch")
	if v.Match {
		r.Result.Text = "Match"
	}
	return r
}

func buildCutover(v CutoverView, now time.Time) *cutoverPage {
	c := &cutoverPage{Plan: v.Plan, Status: v.Status, WindowStart: fmtTime(v.WindowStart), GoLive: fmtTime(v.GoLive),
		Deadline: fmtTime(v.ReadinessDeadline), Readiness: fmtTime(v.ReadinessAt), Run: v.Run}
	switch {
	case v.Status == dtm.PlanCancelled:
		c.Phase, c.Countdown = badge{"neutral", "Cancelled"}, "The plan was cancelled."
	case v.Status == dtm.PlanRolledBack:
		c.Phase, c.Countdown = badge{"breach", "Rolled back"}, "The cutover was rolled back; the source is live."
	case v.WindowStart.IsZero():
		c.Phase, c.Countdown = badge{"neutral", "No date"}, "No cutover date set."
	case now.Before(v.WindowStart):
		c.Phase, c.Countdown = badge{"neutral", "Planned"}, fmtDuration(v.WindowStart.Sub(now))+" to the window start"
	case now.Before(v.GoLive):
		c.Phase, c.Countdown = badge{"warning", "Window open"}, "Window open: go-live in "+fmtDuration(v.GoLive.Sub(now))
	default:
		c.Phase, c.Countdown = badge{"ok", "Past go-live"}, "Go-live was "+fmtDuration(now.Sub(v.GoLive))+" ago"
	}
	switch {
	case !v.ReadinessAt.IsZero():
		c.ReadinessOK = okBadge(v.ReadinessDeadline.IsZero() || !v.ReadinessAt.After(v.ReadinessDeadline), "Confirmed late")
		if c.ReadinessOK.Class == "ok" {
			c.ReadinessOK.Text = "Confirmed"
		}
	case !v.ReadinessDeadline.IsZero() && now.After(v.ReadinessDeadline):
		c.ReadinessOK = badge{"breach", "Not confirmed; deadline passed"}
	default:
		c.ReadinessOK = badge{"neutral", "Not confirmed yet"}
	}
	if v.Run != nil {
		for i, s := range v.Run.Steps {
			row := stepRow{N: i + 1, Name: s.Name, Status: s.Status, StatusClass: stepClass(s.Status),
				Duration: fmtDuration(s.Duration), DurationKnown: s.Duration > 0}
			c.Steps = append(c.Steps, row)
			if s.Status == dtm.StepDone || s.Status == dtm.StepSkipped {
				c.Done++
			}
		}
		c.Total = len(v.Run.Steps)
		if c.Total > 0 {
			c.Percent = c.Done * 100 / c.Total
		}
	}
	return c
}

// stepClass is the badge class of a runbook step state.
func stepClass(s string) string {
	switch s {
	case dtm.StepDone:
		return "ok"
	case dtm.StepFailed:
		return "breach"
	case dtm.StepRunning:
		return "warning"
	}
	return "neutral"
}
