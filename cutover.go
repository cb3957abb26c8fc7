package dtm

import (
	"context"
	"time"
)

// The cutover weekend (requirement A4): the practice stops on the source
// system at 17:00 on a Friday and works on the target system from 08:00 on
// the following Monday, both in Europe/London; the target confirms that it
// is ready at least ReadinessLeadDays before (T6). Package cutover computes
// the instants (which differ by an hour across the DST weekends).
const (
	CutoverStartHour  = 17 // Friday, Europe/London
	CutoverGoLiveHour = 8  // Monday, Europe/London
	ReadinessLeadDays = 14 // T6: confirm at least two weeks before the cutover date
)

// Plan states.
const (
	PlanActive     = "active"      // planned; readiness and rehearsals may be recorded
	PlanCancelled  = "cancelled"   // replaced by another plan or withdrawn
	PlanLive       = "live"        // the cutover went live
	PlanRolledBack = "rolled-back" // the cutover was abandoned and the source unfrozen
)

// Plan is a practice's migration plan: who moves it from where to where,
// and when (A4). WindowStart, GoLive and ReadinessDeadline are absolute
// instants computed from Date in Europe/London. A Plan holds no patient
// data.
type Plan struct {
	ID             string // assigned by package cutover: practice and date, e.g. "A81001-2026-10-23"
	Practice       string // ODS code
	SourceSupplier string // the source solution supplier (SSS)
	TargetSupplier string // the target solution supplier (TSS)
	SourceURL      string // base URL of the source DTM
	// Date is the cutover Friday as a local date ("2026-10-23").
	Date string
	// WindowStart is Friday 17:00 and GoLive Monday 08:00, Europe/London.
	WindowStart time.Time
	GoLive      time.Time
	// ReadinessDeadline is the latest instant the target may confirm
	// readiness (T6): 17:00 Europe/London on the Friday 14 days before Date.
	ReadinessDeadline time.Time
	Status            string // one of the Plan* states
	CreatedBy         string // who recorded the plan
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Window returns the length of the cutover window: 63 hours on most
// weekends, 64 when the clocks go back and 62 when they go forward.
func (p Plan) Window() time.Duration { return p.GoLive.Sub(p.WindowStart) }

// Confirmation kinds: the target's readiness confirmation (T6) and both
// suppliers' statements that a weekend cutover can be performed (A4).
const (
	ConfirmReadiness       = "target"           // T6: the data and the DTM are fit for a weekend cutover
	ConfirmSourceStatement = "source-statement" // A4: the SSS states the cutover can be performed
	ConfirmTargetStatement = "target-statement" // A4: the TSS states the cutover can be performed
)

// Confirmation is a signed statement recorded against a plan: who made it,
// in what role and for which organisation, when, and the words they signed.
// Report is the readiness report (JSON) the statement was made on, and
// Digest a SHA-256 seal over all of it, so that a later change is
// detectable. Confirmations are append-only.
type Confirmation struct {
	ID           string // assigned by package cutover
	Plan         string
	Practice     string
	Kind         string // one of the Confirm* kinds
	Name         string // the person signing
	Role         string // their role, e.g. "Migration lead"
	Organisation string
	Statement    string
	At           time.Time
	Report       []byte // the readiness report (JSON) at the time of signing
	Digest       string // hex SHA-256 over the fields above (package cutover computes it)
}

// Cutover run modes.
const (
	RunRehearsal = "rehearsal" // every step without freezing the source or going live
	RunCutover   = "cutover"   // the real weekend run
)

// Cutover run states.
const (
	RunInProgress       = "in-progress"       // steps remain; resumable
	RunAwaitingDecision = "awaiting-decision" // the automatic go/no-go rules ran; a person must decide
	RunLive             = "live"              // went live (cutover)
	RunRolledBack       = "rolled-back"       // no-go: the source was unfrozen
	RunRehearsed        = "rehearsed"         // a rehearsal finished
	RunFailed           = "failed"            // a step failed; resumable after the cause is fixed
)

// Runbook step states.
const (
	StepPending = "pending"
	StepRunning = "running" // started; a crash leaves it so, and resume runs it again
	StepDone    = "done"
	StepFailed  = "failed"
	StepSkipped = "skipped" // not part of this run (freeze in a rehearsal, rollback on go)
)

// RunbookStep is one step of a cutover run as recorded: its state, who ran
// it, when, how often it was attempted and the figures it produced. Facts
// are caller-safe figures (counts, instants, digests); never patient data.
type RunbookStep struct {
	Name       string
	Status     string // one of the Step* states
	By         string // who ran it (the operator of the last attempt)
	StartedAt  time.Time
	FinishedAt time.Time
	Attempts   int
	Facts      map[string]string
	Error      string // why it failed, caller-safe; "" otherwise
}

// Duration is how long the step's last attempt took (0 unless finished).
func (s RunbookStep) Duration() time.Duration {
	if s.StartedAt.IsZero() || s.FinishedAt.IsZero() {
		return 0
	}
	return max(s.FinishedAt.Sub(s.StartedAt), 0)
}

// Decisions at go/no-go.
const (
	DecisionGo   = "go"
	DecisionNoGo = "no-go"
)

// Decision is the recorded human go/no-go decision of a cutover run.
type Decision struct {
	Decision string // DecisionGo or DecisionNoGo
	By       string
	Role     string
	Reason   string
	At       time.Time
}

// CutoverRun is one execution of the runbook for a plan, a rehearsal or
// the real cutover, persisted after every step so that it resumes where it
// stopped. Version increases with every save (optimistic concurrency).
type CutoverRun struct {
	ID        string
	Plan      string
	Practice  string
	Mode      string // RunRehearsal or RunCutover
	State     string // one of the Run* states
	Steps     []RunbookStep
	Decision  *Decision         // nil until a person decided
	Reconcile *ReconcileSummary // the reconcile step's result; nil before it
	StartedBy string
	StartedAt time.Time
	UpdatedAt time.Time
	// FinishedAt is set when the run reaches live, rolled-back or rehearsed.
	FinishedAt time.Time
	Version    int64
}

// Step returns the run's step named name and whether there is one.
func (r CutoverRun) Step(name string) (RunbookStep, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return RunbookStep{}, false
}

// RunEvent is one line of a run's append-only log: a step started,
// finished, failed or was resumed, by whom.
type RunEvent struct {
	Run    string
	Seq    int64 // 1-based, assigned by the store
	At     time.Time
	Step   string
	Event  string // "start", "done", "failed", "resume", "skipped", "decision"
	By     string
	Detail string // caller-safe
}

// ReconcileSummary is the outcome of one reconciliation of a practice
// between source and target: counts, and how many resources are missing,
// extra, different or accounted for by quarantine. It names no resource.
type ReconcileSummary struct {
	Practice    string
	Run         string // the cutover run that did it; "" when run on its own
	Method      string // how it was computed, e.g. "digest" or "journal"
	At          time.Time
	Duration    time.Duration
	SourceAsOf  time.Time // the source snapshot compared
	SourceTotal int64
	TargetTotal int64
	Missing     int64
	Extra       int64
	Different   int64
	Quarantined int64 // differences explained by the target's quarantine
	SourceRoot  string
	TargetRoot  string
	Match       bool // nothing missing, extra or different (quarantine accounted for)
}

// Cutovers stores plans, confirmations, runs and reconciliation outcomes
// in the target store. Implementations are safe for concurrent use.
type Cutovers interface {
	// SaveCutoverPlan creates or replaces a plan (keyed by ID).
	SaveCutoverPlan(ctx context.Context, p Plan) error
	// CutoverPlan returns a plan by ID, or an ENotFound error.
	CutoverPlan(ctx context.Context, id string) (Plan, error)
	// CutoverPlans returns the plans of a practice ("" for every
	// practice), newest first.
	CutoverPlans(ctx context.Context, practice string) ([]Plan, error)

	// AddConfirmation appends a confirmation. It returns an EConflict
	// error when one with the same ID exists; confirmations are never
	// changed or removed.
	AddConfirmation(ctx context.Context, c Confirmation) error
	// Confirmations returns the confirmations of a plan in the order they
	// were added.
	Confirmations(ctx context.Context, plan string) ([]Confirmation, error)

	// SaveCutoverRun stores r if the stored run's Version is r.Version-1
	// (or there is none and r.Version is 1). It returns an EConflict error
	// otherwise: someone else saved the run meanwhile.
	SaveCutoverRun(ctx context.Context, r CutoverRun) error
	// CutoverRun returns a run by ID, or an ENotFound error.
	CutoverRun(ctx context.Context, id string) (CutoverRun, error)
	// CutoverRuns returns the runs of a plan, newest first.
	CutoverRuns(ctx context.Context, plan string) ([]CutoverRun, error)
	// AppendRunEvent appends e to its run's log, assigning Seq.
	AppendRunEvent(ctx context.Context, e RunEvent) error
	// RunEvents returns a run's log in order.
	RunEvents(ctx context.Context, run string) ([]RunEvent, error)

	// RecordReconcile stores a reconciliation outcome.
	RecordReconcile(ctx context.Context, s ReconcileSummary) error
	// ReconcileHistory returns up to limit reconciliation outcomes of the
	// practice, newest first.
	ReconcileHistory(ctx context.Context, practice string, limit int) ([]ReconcileSummary, error)
}
