package cutover

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dtm-project/dtm"
)

// EvidenceInput is what the evidence report is built from: the target's
// records and, optionally, the data issue log, the source's audit log and
// the API's published descriptions. Store, State and Journal are required.
type EvidenceInput struct {
	Practice string
	Store    dtm.Cutovers
	State    dtm.TargetState
	Journal  dtm.Journal  // the target store: what it holds
	Issues   IssueLister  // nil: no evidence on data issues
	Audit    dtm.AuditLog // the source's audit log, when reachable; nil: none
	// OpenAPI is docs/openapi.yaml and Capability the source's
	// CapabilityStatement (JSON); nil when not available.
	OpenAPI    []byte
	Capability []byte
	// CapabilitySource says where Capability came from (a URL or file).
	CapabilitySource string
	Now              time.Time
	Options          Options
}

// Evidence is everything the assurance report shows. It holds figures,
// instants, names of signers and operators: never patient data.
type Evidence struct {
	Practice    string
	GeneratedAt time.Time
	Plan        *dtm.Plan
	Readiness   *Report
	// ReadinessSigned is true when Readiness is the report the T6
	// confirmation was signed on, false when it was assessed now.
	ReadinessSigned bool
	Requirements    []Requirement
	Pulls           []dtm.PullRecord // every pull, oldest first
	Initial         *dtm.PullRecord  // the first complete initial extract
	Quarantine      map[string]int64 // quarantined resources by reason
	Held            map[string]int64 // live resources per type in the target store
	HeldTotal       int64
	Issues          []dtm.DataIssue
	IssuesKnown     bool
	Reconciles      []dtm.ReconcileSummary // newest first
	Runs            []dtm.CutoverRun       // newest first
	Events          map[string][]dtm.RunEvent
	Confirms        []dtm.Confirmation
	Audit           []Figure // counts by action and outcome; nil without an audit log
	API             APISummary
	Charts          Charts
}

// APISummary is the technical description of the API (A1).
type APISummary struct {
	OpenAPITitle, OpenAPIVersion string
	Paths                        []string // "GET /fhir/Group/{id}/$export", ...
	FHIRVersion, Software        string
	CapabilitySource             string
	Resources                    []string // resource types the source declares
	Operations                   []string
	Security                     string
}

// BuildEvidence gathers the evidence for the practice at in.Now.
func BuildEvidence(ctx context.Context, in EvidenceInput) (Evidence, error) {
	ev := Evidence{Practice: in.Practice, GeneratedAt: in.Now, Quarantine: map[string]int64{}, Events: map[string][]dtm.RunEvent{}}
	pulls, err := in.State.Pulls(ctx, in.Practice, maxPulls)
	if err != nil {
		return Evidence{}, fmt.Errorf("evidence: %w", err)
	}
	slices.Reverse(pulls)
	ev.Pulls = pulls
	for i := range pulls {
		if p := pulls[i]; p.Status == dtm.PullComplete && p.Since.IsZero() {
			ev.Initial = &pulls[i]
			break
		}
	}
	err = in.State.Quarantined(ctx, in.Practice, "", func(q dtm.QuarantineRecord) error {
		ev.Quarantine[q.Reason]++ // reasons only: the records may hold patient data
		return nil
	})
	if err != nil {
		return Evidence{}, fmt.Errorf("evidence: quarantine: %w", err)
	}
	head, err := in.Journal.Head(ctx)
	if err != nil {
		return Evidence{}, fmt.Errorf("evidence: %w", err)
	}
	if ev.Held, err = in.Journal.Counts(ctx, in.Practice, head.Seq); err != nil {
		return Evidence{}, fmt.Errorf("evidence: %w", err)
	}
	for _, n := range ev.Held {
		ev.HeldTotal += n
	}
	if ev.Reconciles, err = in.Store.ReconcileHistory(ctx, in.Practice, 100); err != nil {
		return Evidence{}, fmt.Errorf("evidence: %w", err)
	}
	if in.Issues != nil {
		if ev.Issues, err = in.Issues.ListIssues(ctx, dtm.IssueQuery{Practice: in.Practice}); err != nil {
			return Evidence{}, fmt.Errorf("evidence: issues: %w", err)
		}
		ev.IssuesKnown = true
	}
	if err := ev.gatherPlan(ctx, in); err != nil {
		return Evidence{}, err
	}
	if in.Audit != nil {
		if err := ev.gatherAudit(ctx, in.Audit); err != nil {
			return Evidence{}, err
		}
	}
	ev.API = summariseAPI(in.OpenAPI, in.Capability, in.CapabilitySource)
	ev.Requirements = requirements(ev)
	ev.Charts = charts(ev)
	return ev, nil
}

// gatherPlan reads the plan, its runs with their logs and confirmations,
// and assesses readiness as of now.
func (ev *Evidence) gatherPlan(ctx context.Context, in EvidenceInput) error {
	plan, err := ActivePlan(ctx, in.Store, in.Practice)
	if dtm.ErrorCode(err) == dtm.ENotFound {
		return nil
	} else if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	ev.Plan = &plan
	if ev.Runs, err = in.Store.CutoverRuns(ctx, plan.ID); err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	for _, r := range ev.Runs {
		if ev.Events[r.ID], err = in.Store.RunEvents(ctx, r.ID); err != nil {
			return fmt.Errorf("evidence: %w", err)
		}
	}
	if ev.Confirms, err = in.Store.Confirmations(ctx, plan.ID); err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	// The readiness shown is the one the T6 confirmation was signed on;
	// without a confirmation, an assessment as of now.
	for _, c := range ev.Confirms {
		var rep Report
		if c.Kind == dtm.ConfirmReadiness && Verify(c) && json.Unmarshal(c.Report, &rep) == nil {
			ev.Readiness, ev.ReadinessSigned = &rep, true
		}
	}
	if ev.Readiness == nil {
		f := Facts{Plan: plan, Now: in.Now, Since: in.Now.Add(-time.Duration(in.Options.days()) * 24 * time.Hour),
			Pulls: ev.Pulls, Reconciles: ev.Reconciles, Runs: ev.Runs, Issues: ev.Issues, IssuesKnown: ev.IssuesKnown}
		rep := Assess(f, in.Options)
		ev.Readiness = &rep
	}
	return nil
}

// gatherAudit counts the source's audit events for the practice by action
// and outcome.
func (ev *Evidence) gatherAudit(ctx context.Context, log dtm.AuditLog) error {
	events, err := log.AuditEvents(ctx, dtm.AuditQuery{Practice: ev.Practice})
	if err != nil {
		return fmt.Errorf("evidence: audit: %w", err)
	}
	counts := map[string]int{}
	for _, e := range events {
		counts[e.Action+" / "+e.Outcome]++
	}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		ev.Audit = append(ev.Audit, Figure{k, fmt.Sprint(counts[k])})
	}
	if len(ev.Audit) == 0 {
		ev.Audit = []Figure{{"audit events for the practice", "0"}}
	}
	return nil
}

// rehearsals returns the finished rehearsals, newest first.
func (ev Evidence) rehearsals() []dtm.CutoverRun {
	var out []dtm.CutoverRun
	for _, r := range ev.Runs {
		if r.Mode == dtm.RunRehearsal && r.State == dtm.RunRehearsed {
			out = append(out, r)
		}
	}
	return out
}

// cutoverRun returns the newest real cutover run, if any.
func (ev Evidence) cutoverRun() (dtm.CutoverRun, bool) {
	for _, r := range ev.Runs {
		if r.Mode == dtm.RunCutover {
			return r, true
		}
	}
	return dtm.CutoverRun{}, false
}

// completePulls returns the complete pulls, oldest first.
func (ev Evidence) completePulls() []dtm.PullRecord {
	var out []dtm.PullRecord
	for _, p := range ev.Pulls {
		if p.Status == dtm.PullComplete {
			out = append(out, p)
		}
	}
	return out
}
