package main

import (
	"context"
	"log/slog"
	"slices"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/cutover"
	"github.com/dtm-project/dtm/target"
)

// The source keeps the data issue log (/dtm/v1/practices/{ods}/issues). The
// readiness assessment, the confirmation and the evidence report read it
// from the source store when --source-db is given (test environments), and
// otherwise over the source's API: at --source, or the plan's source URL.

// issueList is a practice's issue log, read once.
type issueList []dtm.DataIssue

// ListIssues returns the issues that match q.
func (l issueList) ListIssues(_ context.Context, q dtm.IssueQuery) ([]dtm.DataIssue, error) {
	var out []dtm.DataIssue
	for _, i := range l {
		switch {
		case q.Practice != "" && i.Practice != q.Practice,
			len(q.Statuses) > 0 && !slices.Contains(q.Statuses, i.Status),
			q.Category != "" && i.Category != q.Category,
			q.Rule != "" && i.Rule != q.Rule,
			q.Key != "" && i.Key != q.Key:
			continue
		}
		out = append(out, i)
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out, nil
}

// sourceIssues returns where the practice's data issues are read from: the
// source store src when it keeps them, else the source's API at o.source
// (planSource when o.source is ""). When the API cannot be read it logs
// why and returns nil, and the assessment or report says that the issue
// log was not available rather than failing: that is evidence missing,
// which the readiness check reports as such.
func sourceIssues(ctx context.Context, e *env, o issuesOptions, src dtm.Store, practice, planSource string) cutover.IssueLister {
	if il, ok := src.(cutover.IssueLister); ok {
		return il
	}
	if o.source == "" {
		o.source = planSource
	}
	log := e.logger()
	if o.source == "" {
		log.Warn("no source URL: the data issue log is not read")
		return nil
	}
	o.practice, o.output = practice, "text"
	c, err := o.client(ctx, e)
	if err == nil {
		var is []target.Issue
		if is, err = c.ListIssues(ctx, practice, ""); err == nil {
			out := make(issueList, len(is))
			for k, i := range is {
				out[k] = i.DataIssue
			}
			log.Info("data issue log read from the source", "source", o.source, "issues", len(out))
			return out
		}
	}
	log.Warn("the data issue log could not be read from the source; the issues check will say it was not available "+
		"(give --client-id and --key, or --source-db)", "source", o.source, slog.Any("err", err))
	return nil
}
