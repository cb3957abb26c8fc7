package dtm

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// Data issue statuses: where a DataIssue stands between the target, which
// raises, verifies and closes it, and the source, which acknowledges,
// answers, resolves or rejects it (requirements T5 and S6).
const (
	IssueOpen         = "open"         // raised or reopened by the target; waiting for the source
	IssueAcknowledged = "acknowledged" // the source has taken it on
	IssueAnswered     = "answered"     // the source replied (an explanation or a question); waiting for the target
	IssueResolved     = "resolved"     // the source says it is fixed; waiting for the target to verify
	IssueRejected     = "rejected"     // the source says it is not a data problem or will not be fixed
	IssueClosed       = "closed"       // the target verified the fix or accepted the answer
)

// Data issue actions: what an IssueAction does. Raise, update, close and
// reopen belong to the target; acknowledge, answer, resolve and reject to the
// source; comment to either (see IssueActionBySource).
const (
	IssueRaise       = "raise"       // (none) → open
	IssueUpdate      = "update"      // replaces the affected resources, outcome, severity or title; status unchanged
	IssueComment     = "comment"     // adds a note; status unchanged
	IssueAcknowledge = "acknowledge" // open → acknowledged
	IssueAnswer      = "answer"      // open, acknowledged, answered → answered
	IssueResolve     = "resolve"     // open, acknowledged, answered → resolved
	IssueReject      = "reject"      // open, acknowledged, answered → rejected
	IssueClose       = "close"       // any but closed → closed
	IssueReopen      = "reopen"      // answered, resolved, rejected, closed → open
)

// Data issue categories.
const (
	IssueValidation     = "validation"     // resources failed validation (quarantined)
	IssueAttachment     = "attachment"     // document attachments missing or failing size/hash
	IssueLoad           = "load"           // the target store refused resources
	IssueSourceError    = "source-error"   // the export's error files, unreadable lines
	IssueReconciliation = "reconciliation" // reconcile found resources missing, extra or different
	IssueOther          = "other"          // anything else, raised by a person
)

// Limits of a DataIssue, checked by Validate and Apply.
const (
	// MaxIssueResources bounds the affected resources an issue lists; an
	// issue about more sets ResourceCount to the true number.
	MaxIssueResources = 100_000
	MaxIssueText      = 10_000  // characters of Text and of an action's text
	MaxIssueTitle     = 200     // characters of Title
	MaxIssueOutcome   = 1 << 20 // bytes of the OperationOutcome JSON
)

// DataIssue is a data problem the target raised with the source about one
// practice, and everything that happened to it since. Its texts name
// resources by Type/id only: they must never carry patient data.
type DataIssue struct {
	ID       string // assigned by the store, unique store-wide
	Practice string // ODS code
	// Key, when not "", deduplicates: no two issues of a practice that are
	// not closed share a key. Automatic raising uses "auto:CATEGORY:RULE".
	Key      string
	Status   string // one of the Issue* statuses
	Severity string // fatal, error, warning or information (FHIR issue severity)
	Category string // one of the Issue* categories
	Rule     string // the failed rule (e.g. a ukcore rule id); "" when none
	Title    string // one line, for lists
	Text     string // free text from the raiser
	// Resources are the affected resources as "Type/id", sorted and
	// unique; ResourceCount is how many are affected, which is more than
	// len(Resources) when the list was capped at MaxIssueResources.
	Resources     []string
	ResourceCount int
	// Outcome is a FHIR OperationOutcome (JSON) describing the problem;
	// nil when none was given.
	Outcome []byte

	RaisedBy  string    // who raised it: a client id or a person
	RaisedAt  time.Time // when it was raised
	UpdatedAt time.Time // the last action
	// AwaitingSince is when the issue last went to the source (raised or
	// reopened): response times run from it. RespondedAt is the source's
	// first action since then (zero while it has not responded).
	AwaitingSince time.Time
	RespondedAt   time.Time
	ClosedAt      time.Time // zero unless closed

	// History is every action in order, the raise first. Issues returned
	// by Issues.ListIssues leave it (and Resources and Outcome) empty.
	History []IssueEvent
}

// IssueEvent is one entry of an issue's history: who did what, when, and
// the status it moved the issue from and to.
type IssueEvent struct {
	Seq    int // 1-based position in the history
	At     time.Time
	Actor  string // client id or person; "" when authentication is off and none was given
	Action string // one of the Issue* actions
	From   string // status before ("" for the raise)
	To     string // status after
	Text   string // what the actor wrote, or a summary of an update
}

// IssueAction is a request to change an issue, as given to DataIssue.Apply
// and Issues.UpdateIssue.
type IssueAction struct {
	Action string
	Actor  string
	At     time.Time
	Text   string
	// For IssueUpdate only: the values that replace the issue's; zero
	// values keep the current ones. Resources replaces the list (and
	// ResourceCount, when 0, becomes its length).
	Resources     []string
	ResourceCount int
	Outcome       []byte
	Severity      string
	Title         string
}

// Issues stores data issues on the source. Implementations are safe for
// concurrent use; UpdateIssue is atomic per issue.
type Issues interface {
	// CreateIssue stores a new issue (already raised with Apply) with its
	// history and returns it with its ID. It returns an EInvalid error
	// when the issue fails Validate, and EConflict when an issue of the
	// practice that is not closed has the same non-empty Key.
	CreateIssue(ctx context.Context, i DataIssue) (DataIssue, error)
	// Issue returns one issue of the practice with its history, or an
	// ENotFound error.
	Issue(ctx context.Context, practice, id string) (DataIssue, error)
	// ListIssues returns the issues matching q ordered by ID (numerically),
	// without History, Resources and Outcome.
	ListIssues(ctx context.Context, q IssueQuery) ([]DataIssue, error)
	// UpdateIssue applies a to the issue (DataIssue.Apply) and stores the
	// result and the new history event in one transaction. It returns
	// ENotFound for an unknown issue, Apply's error when the action is not
	// allowed, and EConflict when a reopened issue's Key is taken.
	UpdateIssue(ctx context.Context, practice, id string, a IssueAction) (DataIssue, error)
}

// IssueQuery selects issues. Zero fields match everything.
type IssueQuery struct {
	Practice string
	Statuses []string // any of these statuses
	Category string
	Rule     string
	Key      string
	Limit    int // at most this many (0: no limit)
}

var (
	issueType = regexp.MustCompile(`^[A-Z][A-Za-z]{0,63}$`)
	issueID   = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
)

// ValidIssueResource reports whether s is "Type/id": a FHIR resource type
// name and a FHIR id.
func ValidIssueResource(s string) bool {
	i := len(s) - 1
	for i >= 0 && s[i] != '/' {
		i--
	}
	return i > 0 && issueType.MatchString(s[:i]) && issueID.MatchString(s[i+1:])
}

// IssueActionBySource reports whether action is one the source takes
// (acknowledge, answer, resolve, reject). Comment is open to both sides;
// the rest belong to the target.
func IssueActionBySource(action string) bool {
	switch action {
	case IssueAcknowledge, IssueAnswer, IssueResolve, IssueReject:
		return true
	}
	return false
}

// ValidIssueStatus reports whether s is one of the Issue* statuses.
func ValidIssueStatus(s string) bool {
	return slices.Contains([]string{IssueOpen, IssueAcknowledged, IssueAnswered, IssueResolved, IssueRejected, IssueClosed}, s)
}

// ValidIssueCategory reports whether s is one of the Issue* categories.
func ValidIssueCategory(s string) bool {
	return slices.Contains([]string{IssueValidation, IssueAttachment, IssueLoad, IssueSourceError, IssueReconciliation, IssueOther}, s)
}

// validSeverity reports whether s is a FHIR issue severity.
func validSeverity(s string) bool {
	return slices.Contains([]string{"fatal", "error", "warning", "information"}, s)
}

// Validate checks the fields a raiser sets: practice, severity, category,
// lengths, resources and outcome (ResourceCount 0 means len(Resources)). It returns an EInvalid error naming the
// first problem.
func (i DataIssue) Validate() error {
	switch {
	case !ValidODS(i.Practice):
		return Errorf(EInvalid, "issue: practice must be an ODS code")
	case !validSeverity(i.Severity):
		return Errorf(EInvalid, "issue: severity must be fatal, error, warning or information")
	case !ValidIssueCategory(i.Category):
		return Errorf(EInvalid, "issue: unknown category %q", i.Category)
	case len(i.Rule) > 100 || len(i.Key) > 200:
		return Errorf(EInvalid, "issue: rule or key too long")
	case len([]rune(i.Title)) > MaxIssueTitle:
		return Errorf(EInvalid, "issue: title longer than %d characters", MaxIssueTitle)
	case len([]rune(i.Text)) > MaxIssueText:
		return Errorf(EInvalid, "issue: text longer than %d characters", MaxIssueText)
	case i.ResourceCount < 0 || (i.ResourceCount != 0 && i.ResourceCount < len(i.Resources)):
		return Errorf(EInvalid, "issue: resourceCount is less than the resources listed")
	}
	if err := checkIssueResources(i.Resources); err != nil {
		return err
	}
	return checkOutcome(i.Outcome)
}

// checkIssueResources checks a resource list's length and form.
func checkIssueResources(rs []string) error {
	if len(rs) > MaxIssueResources {
		return Errorf(ETooLarge, "issue: more than %d resources listed", MaxIssueResources)
	}
	for _, r := range rs {
		if !ValidIssueResource(r) {
			return Errorf(EInvalid, "issue: resources must be Type/id, got %.80q", r)
		}
	}
	return nil
}

// checkOutcome checks that b is empty or an OperationOutcome object.
func checkOutcome(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if len(b) > MaxIssueOutcome {
		return Errorf(ETooLarge, "issue: outcome larger than %d bytes", MaxIssueOutcome)
	}
	var oo struct {
		ResourceType string `json:"resourceType"`
	}
	if json.Unmarshal(b, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return Errorf(EInvalid, "issue: outcome must be a FHIR OperationOutcome")
	}
	return nil
}

// SortIssueResources sorts rs and removes duplicates, in place, and
// returns the result.
func SortIssueResources(rs []string) []string {
	slices.Sort(rs)
	return slices.Compact(rs)
}

// Apply performs action a on the issue, as its state machine allows, and
// appends the event to History:
//
//	raise        (new)                         → open
//	acknowledge  open                          → acknowledged
//	answer       open, acknowledged, answered  → answered
//	resolve      open, acknowledged, answered  → resolved
//	reject       open, acknowledged, answered  → rejected
//	close        any but closed                → closed
//	reopen       answered, resolved, rejected, closed → open
//	update, comment                            (status unchanged; update not when closed)
//
// The source's first action after the issue went to it sets RespondedAt;
// raise and reopen set AwaitingSince and clear RespondedAt. It returns an
// EInvalid error for an unknown action, a missing time, an answer or
// rejection without text, or bad update values, and an EConflict error for
// an action the current status does not allow. On error i is unchanged.
func (i *DataIssue) Apply(a IssueAction) error {
	if a.At.IsZero() {
		return Errorf(EInvalid, "issue action needs a time")
	}
	if len([]rune(a.Text)) > MaxIssueText {
		return Errorf(EInvalid, "issue: text longer than %d characters", MaxIssueText)
	}
	to, err := issueTransition(i.Status, a)
	if err != nil {
		return err
	}
	next := *i
	if a.Action == IssueUpdate {
		if err := next.update(a); err != nil {
			return err
		}
	}
	switch a.Action {
	case IssueRaise:
		next.RaisedBy, next.RaisedAt, next.AwaitingSince = a.Actor, a.At, a.At
		if next.ResourceCount == 0 {
			next.ResourceCount = len(next.Resources)
		}
	case IssueReopen:
		next.AwaitingSince, next.RespondedAt, next.ClosedAt = a.At, time.Time{}, time.Time{}
	case IssueClose:
		next.ClosedAt = a.At
	}
	if IssueActionBySource(a.Action) && next.RespondedAt.IsZero() {
		next.RespondedAt = a.At
	}
	text := a.Text
	if a.Action == IssueUpdate && text == "" {
		text = updateSummary(*i, next)
	}
	next.Status, next.UpdatedAt = to, a.At
	next.History = append(slices.Clip(i.History), IssueEvent{
		Seq: len(i.History) + 1, At: a.At, Actor: a.Actor, Action: a.Action, From: i.Status, To: to, Text: text,
	})
	*i = next
	return nil
}

// issueTransition returns the status action a leads to from status from.
func issueTransition(from string, a IssueAction) (string, error) {
	allowed := func(froms ...string) error {
		if slices.Contains(froms, from) {
			return nil
		}
		return Errorf(EConflict, "cannot %s an issue that is %s", a.Action, from)
	}
	switch a.Action {
	case IssueRaise:
		if from != "" {
			return "", Errorf(EConflict, "issue already raised")
		}
		return IssueOpen, nil
	case IssueComment:
		if a.Text == "" {
			return "", Errorf(EInvalid, "a comment needs text")
		}
		return from, nil
	case IssueUpdate:
		return from, allowed(IssueOpen, IssueAcknowledged, IssueAnswered, IssueResolved, IssueRejected)
	case IssueAcknowledge:
		return IssueAcknowledged, allowed(IssueOpen)
	case IssueAnswer, IssueReject:
		if a.Text == "" {
			return "", Errorf(EInvalid, "to %s an issue, say why (text)", a.Action)
		}
		to := map[string]string{IssueAnswer: IssueAnswered, IssueReject: IssueRejected}[a.Action]
		return to, allowed(IssueOpen, IssueAcknowledged, IssueAnswered)
	case IssueResolve:
		return IssueResolved, allowed(IssueOpen, IssueAcknowledged, IssueAnswered)
	case IssueClose:
		return IssueClosed, allowed(IssueOpen, IssueAcknowledged, IssueAnswered, IssueResolved, IssueRejected)
	case IssueReopen:
		return IssueOpen, allowed(IssueAnswered, IssueResolved, IssueRejected, IssueClosed)
	}
	return "", Errorf(EInvalid, "unknown issue action %q", a.Action)
}

// update replaces the fields an IssueUpdate carries.
func (i *DataIssue) update(a IssueAction) error {
	if a.Resources != nil {
		if err := checkIssueResources(a.Resources); err != nil {
			return err
		}
		i.Resources = SortIssueResources(slices.Clone(a.Resources))
		i.ResourceCount = max(a.ResourceCount, len(i.Resources))
	}
	if a.Outcome != nil {
		if err := checkOutcome(a.Outcome); err != nil {
			return err
		}
		i.Outcome = a.Outcome
	}
	if a.Severity != "" {
		if !validSeverity(a.Severity) {
			return Errorf(EInvalid, "issue: severity must be fatal, error, warning or information")
		}
		i.Severity = a.Severity
	}
	if a.Title != "" {
		if len([]rune(a.Title)) > MaxIssueTitle {
			return Errorf(EInvalid, "issue: title longer than %d characters", MaxIssueTitle)
		}
		i.Title = a.Title
	}
	return nil
}

// updateSummary describes an update for the history: resource counts
// before and after, and which resources left or joined (counts only).
func updateSummary(before, after DataIssue) string {
	if before.ResourceCount == after.ResourceCount && slices.Equal(before.Resources, after.Resources) {
		return "updated"
	}
	gone, added := 0, 0
	for _, r := range before.Resources {
		if _, ok := slices.BinarySearch(after.Resources, r); !ok {
			gone++
		}
	}
	for _, r := range after.Resources {
		if _, ok := slices.BinarySearch(before.Resources, r); !ok {
			added++
		}
	}
	return "resources " + strconv.Itoa(before.ResourceCount) + " → " + strconv.Itoa(after.ResourceCount) +
		" (" + strconv.Itoa(gone) + " no longer affected, " + strconv.Itoa(added) + " newly affected)"
}
