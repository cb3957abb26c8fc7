package web

import (
	"context"
	"time"
)

// Dashboard roles.
const (
	RoleSource = "source" // "dtm source serve": the DTM the source supplier runs
	RoleTarget = "target" // "dtm target serve": the target supplier's side
)

// Provider returns the dashboard's figures now. It is called for every
// page load and, shared between all open event streams, at most once per
// update; it must be safe for concurrent use and should return within a
// second or two. An error is logged and shown as "figures unavailable",
// never sent in detail to the browser.
type Provider func(ctx context.Context) (Dashboard, error)

// Dashboard is everything the page shows: plain values, filled by a
// Provider. It must hold aggregates and resource ids only, never patient
// data.
type Dashboard struct {
	Title string // page title, e.g. "dtm source"
	Role  string // RoleSource or RoleTarget
	// GeneratedAt is the instant the figures describe; ages, countdowns and
	// the SLA checks are computed from it. When zero the Handler sets it
	// from its clock.
	GeneratedAt time.Time
	Practices   []PracticeView
}

// PracticeView is one practice's figures. A nil panel means "not recorded
// yet" (the store does not keep that kind of record, or the feature is not
// built): the page says so rather than showing a misleading zero.
type PracticeView struct {
	ODS       string // ODS code (also the FHIR Group id)
	Name      string
	Frozen    bool  // ingest is frozen for the cutover
	Resources int64 // live resources in this role's store

	Freshness FreshnessView
	Changes   *ChangesView
	Pulls     *PullsView
	Findings  *FindingsView
	Issues    *IssuesView
	Reconcile *ReconcileView
	Cutover   *CutoverView
}

// FreshnessView is how far behind the live source system the data is
// (requirements S3, S4 and T3).
type FreshnessView struct {
	// LastUpdated is, on the source, when the DTM last committed a change
	// for the practice; on the target, the transactionTime the target
	// holds the practice up to. Zero when never.
	LastUpdated time.Time
	// Watermark is the source system's "complete as of" time (on the
	// target: as the source reported it at the last pull). Zero when never
	// sent.
	Watermark time.Time
	Lag       time.Duration // now minus the later of the two
	// State is dtm.FreshOK, FreshWarning or FreshBreach: on the source, the
	// lag against the 6 h and 12 h limits (S3); on the target, whose copy
	// is refreshed by pulls, whether it pulled within 7 days (T2) and the
	// source was fresh at that pull (T3).
	State string
	// History is the lag over time, oldest first: Value in hours. The
	// chart draws it against the 6 h and 12 h lines.
	History []Point
}

// Point is one sample of a time series.
type Point struct {
	At    time.Time
	Value float64
}

// ChangesView counts changes committed per day (Europe/London days).
type ChangesView struct {
	Days []DayCount // oldest first; the last one is today, so far
}

// DayCount is the number of changes committed on one day.
type DayCount struct {
	Day   time.Time // any instant on the day (its date in Europe/London is shown)
	Count int64
}

// PullsView is the practice's retrievals: on the target its pulls with
// their consumption times (T1) and the time since the last complete one
// (T2); on the source, the export kick-offs it served.
type PullsView struct {
	Recent []PullView // newest first; the page shows the first ten
	// LastSuccess is when the latest complete retrieval finished (on the
	// source: the latest kick-off); zero when there was none.
	LastSuccess time.Time
	// LastConsume is the latest complete pull's consumption time (from
	// its export becoming available to everything applied); negative when
	// not known (on the source).
	LastConsume time.Duration
	Pending     string // id of an unfinished pull, "" when none
	// Last24h counts retrievals started in the 24 hours before
	// GeneratedAt (S7: more than one needs an agreement).
	Last24h int
}

// PullView is one pull (target) or export kick-off (source).
type PullView struct {
	ID          string
	Client      string // who retrieved ("" when not known)
	Status      string // a dtm.Pull* state, or "kicked-off" on the source
	StartedAt   time.Time
	AvailableAt time.Time     // the export's manifest was first seen complete
	FinishedAt  time.Time     // everything applied, or given up
	Consume     time.Duration // FinishedAt − AvailableAt of a complete pull; 0 otherwise
	Received    int64         // resources and deletes received
	Quarantined int64         // of those, kept aside with a reason
	Error       string        // caller-safe reason of a failed pull
}

// FindingsView is what validation found in the data received (T4).
type FindingsView struct {
	Rules       []RuleCount // most frequent first
	Quarantined int64       // resources kept aside with a reason
	Warnings    int64       // validation warnings on applied resources
}

// RuleCount is how many resources one rule (or quarantine reason) caught.
type RuleCount struct {
	Rule   string // rule id, e.g. "nhs-number-check-digit"
	Reason string // quarantine reason, e.g. "invalid", "attachment"
	Count  int64
}

// IssuesView is the practice's data issues that are not closed (T5, S6).
type IssuesView struct {
	Open   []IssueView // oldest first
	Closed int         // how many are closed, for context
}

// IssueView is one data issue, without its resources' content.
type IssueView struct {
	ID        string
	Status    string // a dtm.Issue* status
	Severity  string
	Category  string
	Rule      string
	Title     string
	Resources int       // how many resources it names
	RaisedAt  time.Time // its age is counted from here
	Due       time.Time // when the source's response is due (zero: none)
	Overdue   bool
	WaitingOn string // "source", "target" or ""
}

// ReconcileView is the latest reconciliation of the practice between
// source and target (invariant 5).
type ReconcileView struct {
	At          time.Time
	SourceAsOf  time.Time
	Method      string
	SourceTotal int64
	TargetTotal int64
	Missing     int64
	Extra       int64
	Different   int64
	Quarantined int64 // differences explained by quarantine
	Match       bool
}

// CutoverView is the practice's migration plan and its runbook's progress
// (A4, T6). Times are absolute instants; the page counts down from
// GeneratedAt to WindowStart (Friday 17:00 Europe/London).
type CutoverView struct {
	Plan              string
	Status            string // a dtm.Plan* state
	WindowStart       time.Time
	GoLive            time.Time
	ReadinessDeadline time.Time
	ReadinessAt       time.Time // when the target confirmed readiness (zero: not yet)
	Run               *RunView  // the latest rehearsal or cutover run; nil when none
}

// RunView is one runbook run and its steps.
type RunView struct {
	ID    string
	Mode  string // dtm.RunRehearsal or dtm.RunCutover
	State string // a dtm.Run* state
	Steps []StepView
}

// StepView is one runbook step.
type StepView struct {
	Name     string
	Status   string // a dtm.Step* state
	Duration time.Duration
}
