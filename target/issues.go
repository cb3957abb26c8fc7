package target

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// AutoKeyPrefix starts the key of every issue the target raises by itself
// (RaiseFindings): "auto:CATEGORY:RULE". Issues with other keys (or none),
// raised by people, are never updated or closed automatically.
const AutoKeyPrefix = "auto:"

// Finding is a group of resources the target holds aside for the same
// reason after its pulls: one rule that failed validation, or the store's
// refusal, or attachment problems, or unreadable lines. It names resources
// by Type/id only; Message is the rule's own wording, never the data.
type Finding struct {
	Category string // dtm.IssueValidation, IssueLoad, IssueAttachment or IssueSourceError
	Rule     string // the validator's rule id, or the quarantine reason
	Severity string // the worst severity seen: fatal, error or warning
	Code     string // the FHIR issue-type code of the findings
	Message  string // what the rule says, from the first finding
	// Resources are the affected resources, "Type/id", sorted.
	Resources []string
	// Locations are the file#line of lines that named no resource
	// (unreadable lines, export error files), latest pull only.
	Locations []string
}

// Key is the finding's issue key: "auto:CATEGORY:RULE".
func (f Finding) Key() string { return AutoKeyPrefix + f.Category + ":" + f.Rule }

// FindingsAt is the outcome of Findings: the findings, and the pull and
// snapshot they were checked against.
type FindingsAt struct {
	Findings []Finding
	// Pull is the latest complete pull of the practice from the source,
	// and TransactionTime its checkpoint; "" and zero when there is none.
	Pull            string
	TransactionTime time.Time
	// Fixed counts the resources quarantined by earlier pulls that are no
	// longer failing (a later version was applied, or the source changed
	// or deleted them).
	Fixed int
}

// quarantined is the latest quarantine record of one resource, without
// its JSON.
type quarantined struct {
	reason  string
	version int64
	outcome []byte
}

// Findings returns what the target still holds aside for the practice
// after its complete pulls from the client's source, grouped by rule. A
// resource quarantined by any complete pull counts until a later version
// reaches the target store (for attachment problems: a later version than
// the one whose attachment failed), or the source, asked at the
// checkpoint's snapshot (Client.LookupResources), no longer holds that
// version: it was fixed or deleted there. A source without the lookup
// endpoint is not asked. Lines that named no resource count from the
// latest complete pull only. The result is sorted by category and rule.
func Findings(ctx context.Context, client *Client, state dtm.TargetState, store dtm.Journal, practice string) (FindingsAt, error) {
	var out FindingsAt
	pulls, err := state.Pulls(ctx, practice, 1_000_000)
	if err != nil {
		return out, fmt.Errorf("findings: %w", err)
	}
	complete := map[string]bool{}
	for _, p := range pulls { // newest first
		if p.Source == client.Source() && p.Status == dtm.PullComplete {
			if out.Pull == "" {
				out.Pull, out.TransactionTime = p.ID, p.TransactionTime
			}
			complete[p.ID] = true
		}
	}
	latest := map[string]quarantined{}
	groups := map[string]*Finding{}
	err = state.Quarantined(ctx, practice, "", func(q dtm.QuarantineRecord) error {
		switch {
		case !complete[q.Pull]:
		case q.Type != "" && q.ID != "":
			latest[q.Type+"/"+q.ID] = quarantined{reason: q.Reason, version: q.Version, outcome: q.Outcome}
		case q.Pull == out.Pull:
			f := group(groups, dtm.IssueSourceError, q.Reason, "error", "processing", "")
			f.Locations = append(f.Locations, q.Where)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("findings: %w", err)
	}
	failing, err := stillFailing(ctx, client, store, practice, out.TransactionTime, latest)
	if err != nil {
		return out, err
	}
	out.Fixed = len(latest) - len(failing)
	for _, r := range failing {
		addFinding(groups, r, latest[r])
	}
	for _, f := range groups {
		f.Resources = dtm.SortIssueResources(f.Resources)
		slices.Sort(f.Locations)
		out.Findings = append(out.Findings, *f)
	}
	slices.SortFunc(out.Findings, func(a, b Finding) int {
		if c := strings.Compare(a.Category, b.Category); c != 0 {
			return c
		}
		return strings.Compare(a.Rule, b.Rule)
	})
	return out, nil
}

// stillFailing returns, sorted, the resources of latest that are not yet
// fixed: the target store lacks a newer version, and the source (when it
// can be asked) still holds the quarantined version.
func stillFailing(ctx context.Context, client *Client, store dtm.Journal, practice string, at time.Time, latest map[string]quarantined) ([]string, error) {
	var candidates []string
	for _, r := range slices.Sorted(maps.Keys(latest)) {
		q := latest[r]
		typ, id, _ := strings.Cut(r, "/")
		c, err := store.Get(ctx, practice, typ, id)
		switch {
		case dtm.ErrorCode(err) == dtm.ENotFound:
		case err != nil:
			return nil, fmt.Errorf("findings: %w", err)
		case q.reason == dtm.QuarantineAttachment && c.Version > q.version:
			continue
		case q.reason != dtm.QuarantineAttachment && q.version > 0 && c.Version >= q.version:
			continue
		}
		candidates = append(candidates, r)
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	states, err := client.LookupResources(ctx, practice, at, candidates)
	if dtm.ErrorCode(err) == dtm.ENotFound || dtm.ErrorCode(err) == dtm.ENotSupported {
		return candidates, nil // an older source: cannot tell, so still failing
	} else if err != nil {
		return nil, fmt.Errorf("findings: %w", err)
	}
	var out []string
	for _, s := range states {
		q := latest[s.Resource]
		if s.State == "live" && (q.version == 0 || s.Version == q.version) {
			out = append(out, s.Resource)
		}
	}
	return out, nil
}

// addFinding adds resource r, quarantined as q, to the groups of every
// rule it failed.
func addFinding(groups map[string]*Finding, r string, q quarantined) {
	switch q.reason {
	case dtm.QuarantineInvalid:
		issues := outcomeIssues(q.outcome)
		seen := map[string]bool{}
		for _, is := range issues {
			if is.Severity != "error" && is.Severity != "fatal" {
				continue
			}
			rule, msg, ok := strings.Cut(is.Diagnostics, ": ")
			if !ok || rule == "" || strings.ContainsAny(rule, " /") {
				rule, msg = dtm.QuarantineInvalid, is.Diagnostics
			}
			if seen[rule] {
				continue
			}
			seen[rule] = true
			f := group(groups, dtm.IssueValidation, rule, is.Severity, is.Code, msg)
			f.Resources = append(f.Resources, r)
		}
		if len(seen) == 0 {
			f := group(groups, dtm.IssueValidation, dtm.QuarantineInvalid, "error", "invalid", "")
			f.Resources = append(f.Resources, r)
		}
	case dtm.QuarantineAttachment:
		f := group(groups, dtm.IssueAttachment, dtm.QuarantineAttachment, "error", "not-found", "a document attachment is missing or fails its size or hash")
		f.Resources = append(f.Resources, r)
	case dtm.QuarantineRejected:
		f := group(groups, dtm.IssueLoad, dtm.QuarantineRejected, "error", "processing", "the target store refused the resource")
		f.Resources = append(f.Resources, r)
	default:
		f := group(groups, dtm.IssueSourceError, q.reason, "error", "processing", "")
		f.Resources = append(f.Resources, r)
	}
}

// group returns the finding of (category, rule), creating it, and raises
// its severity to severity when that is worse.
func group(groups map[string]*Finding, category, rule, severity, code, msg string) *Finding {
	k := category + ":" + rule
	f := groups[k]
	if f == nil {
		f = &Finding{Category: category, Rule: rule, Severity: severity, Code: code, Message: msg}
		groups[k] = f
	}
	if severity == "fatal" {
		f.Severity = "fatal"
	}
	return f
}

type outcomeIssue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics"`
}

// outcomeIssues reads an OperationOutcome's issues; nil when unreadable.
func outcomeIssues(oo []byte) []outcomeIssue {
	var o struct {
		Issue []outcomeIssue `json:"issue"`
	}
	if json.Unmarshal(oo, &o) != nil {
		return nil
	}
	return o.Issue
}

// outcome returns the OperationOutcome an issue about f carries: one issue
// naming the rule and what it says.
func (f Finding) outcome() []byte {
	diag := f.Rule
	if f.Message != "" {
		diag += ": " + f.Message
	}
	return fhir.OperationOutcome(fhir.OutcomeIssue{Severity: f.Severity, Code: f.Code, Diagnostics: diag})
}

// count is how many resources (or lines) the finding is about.
func (f Finding) count() int { return len(f.Resources) + len(f.Locations) }

// title is the issue title for f.
func (f Finding) title() string {
	noun := "resources"
	if len(f.Resources) == 0 {
		noun = "lines"
	}
	return fmt.Sprintf("%s: %s (%d %s)", f.Category, f.Rule, f.count(), noun)
}
