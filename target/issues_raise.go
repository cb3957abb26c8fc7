package target

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// RaiseResult says what RaiseFindings did, by issue id.
type RaiseResult struct {
	Raised    []string // new issues
	Updated   []string // open issues whose resources changed
	Unchanged []string // open issues still accurate
	Closed    []string // issues no longer failing, closed
}

// RaiseFindings reports findings to the source as data issues (T5), one
// issue per finding (category and rule), keyed "auto:CATEGORY:RULE" so
// that pulls never raise the same problem twice: an active issue with the
// key is updated when its resources changed and left alone otherwise, a
// new one is raised when there is none, and every active automatic issue
// with no finding any more is closed, since the resources it listed are
// fixed. Issues raised by people (other keys) are never touched. A
// finding's resource list is capped at dtm.MaxIssueResources (its count is
// not). Issue texts name resources by Type/id only.
//
// It stops at the first error; issues already raised, updated or closed
// stay so, and running it again finishes the job.
func RaiseFindings(ctx context.Context, client *Client, practice string, findings FindingsAt) (RaiseResult, error) {
	var res RaiseResult
	active, err := client.ListIssues(ctx, practice, "active")
	if err != nil {
		return res, fmt.Errorf("raise findings: %w", err)
	}
	byKey := map[string]Issue{}
	for _, i := range active {
		if strings.HasPrefix(i.Key, AutoKeyPrefix) {
			byKey[i.Key] = i
		}
	}
	for _, f := range findings.Findings {
		i, ok := byKey[f.Key()]
		delete(byKey, f.Key())
		if !ok {
			id, err := raiseFinding(ctx, client, practice, f, findings)
			if err != nil {
				return res, err
			}
			if id != "" {
				res.Raised = append(res.Raised, id)
				continue
			}
			// Raised meanwhile by another run: update that one.
			if i, err = findActive(ctx, client, practice, f.Key()); err != nil {
				return res, err
			}
		}
		changed, err := updateFinding(ctx, client, practice, i, f)
		if err != nil {
			return res, err
		}
		if changed {
			res.Updated = append(res.Updated, i.ID)
		} else {
			res.Unchanged = append(res.Unchanged, i.ID)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		i := byKey[key]
		text := fmt.Sprintf("Closed automatically: no resource fails this any more (checked against pull %s, transactionTime %s).",
			findings.Pull, fhir.FormatInstant(findings.TransactionTime))
		if _, err := client.IssueAction(ctx, practice, i.ID, "close", IssueRequest{Text: text}); err != nil {
			return res, fmt.Errorf("raise findings: close issue %s: %w", i.ID, err)
		}
		res.Closed = append(res.Closed, i.ID)
	}
	return res, nil
}

// capped returns f's resources capped at dtm.MaxIssueResources.
func (f Finding) capped() []string {
	if len(f.Resources) > dtm.MaxIssueResources {
		return f.Resources[:dtm.MaxIssueResources]
	}
	return f.Resources
}

// raiseFinding raises an issue for f and returns its id, or "" when an
// active issue with its key exists already (EConflict).
func raiseFinding(ctx context.Context, client *Client, practice string, f Finding, at FindingsAt) (string, error) {
	text := fmt.Sprintf("Raised automatically by the target after pull %s (transactionTime %s): %d %s held aside by the target, not loaded",
		at.Pull, fhir.FormatInstant(at.TransactionTime), f.count(), map[bool]string{true: "resources", false: "export lines"}[len(f.Resources) > 0])
	if f.Message != "" {
		text += ", because " + f.Rule + ": " + f.Message
	}
	text += "."
	if len(f.Locations) > 0 {
		text += " Lines: " + strings.Join(f.Locations[:min(len(f.Locations), 50)], ", ")
		if len(f.Locations) > 50 {
			text += fmt.Sprintf(" and %d more", len(f.Locations)-50)
		}
		text += "."
	}
	i, err := client.RaiseIssue(ctx, practice, IssueRequest{
		Severity: f.Severity, Category: f.Category, Rule: f.Rule, Key: f.Key(), Title: f.title(),
		Text: truncate(text, dtm.MaxIssueText), Resources: f.capped(), ResourceCount: f.count(), Outcome: f.outcome(),
	})
	if dtm.ErrorCode(err) == dtm.EConflict {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("raise findings: raise %s: %w", f.Key(), err)
	}
	return i.ID, nil
}

// updateFinding updates issue i (listed, so without resources) to f's
// resources when they differ, and reports whether it did.
func updateFinding(ctx context.Context, client *Client, practice string, i Issue, f Finding) (bool, error) {
	full, err := client.GetIssue(ctx, practice, i.ID)
	if err != nil {
		return false, fmt.Errorf("raise findings: get issue %s: %w", i.ID, err)
	}
	if full.ResourceCount == f.count() && slices.Equal(full.Resources, f.capped()) && full.Severity == f.Severity {
		return false, nil
	}
	rs := f.capped()
	if rs == nil {
		rs = []string{}
	}
	_, err = client.IssueAction(ctx, practice, i.ID, "update", IssueRequest{
		Resources: rs, ResourceCount: f.count(), Outcome: f.outcome(), Severity: f.Severity, Title: f.title(),
	})
	if err != nil {
		return false, fmt.Errorf("raise findings: update issue %s: %w", i.ID, err)
	}
	return true, nil
}

// findActive returns the active issue with the key.
func findActive(ctx context.Context, client *Client, practice, key string) (Issue, error) {
	active, err := client.ListIssues(ctx, practice, "active")
	if err != nil {
		return Issue{}, fmt.Errorf("raise findings: %w", err)
	}
	for _, i := range active {
		if i.Key == key {
			return i, nil
		}
	}
	return Issue{}, dtm.Errorf(dtm.EConflict, "raise findings: issue %s neither raisable nor found", key)
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// ReportIssues computes the practice's findings after its pulls (Findings)
// and reports them to the source (RaiseFindings). Call it after each
// successful Pull; it is idempotent, so calling it again (or after a pull
// that brought nothing) changes nothing unless the findings changed.
func (p *Puller) ReportIssues(ctx context.Context, practice string) (FindingsAt, RaiseResult, error) {
	f, err := Findings(ctx, p.cfg.Client, p.cfg.State, p.cfg.Store, practice)
	if err != nil {
		return f, RaiseResult{}, err
	}
	res, err := RaiseFindings(ctx, p.cfg.Client, practice, f)
	if err == nil {
		p.log.Info("data issues reported", "practice", practice, "findings", len(f.Findings), "fixed", f.Fixed,
			"raised", len(res.Raised), "updated", len(res.Updated), "closed", len(res.Closed))
	}
	return f, res, err
}
