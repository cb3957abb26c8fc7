package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dtm-project/dtm"
)

// This file implements dtm.Issues (migration 0030_issues.sql):
// postgres/issue.go is its PostgreSQL twin; keep the two in step.

var _ dtm.Issues = (*DB)(nil)

const issueCols = `id, practice, key, status, severity, category, rule, title, text, resources, resource_count,
	outcome, raised_by, raised_us, updated_us, awaiting_us, responded_us, closed_us`

// listCols are issueCols with the bulky columns left empty.
const listCols = `id, practice, key, status, severity, category, rule, title, text, '[]', resource_count,
	NULL, raised_by, raised_us, updated_us, awaiting_us, responded_us, closed_us`

// CreateIssue stores a raised issue and its history and returns it with
// its ID. It returns an EInvalid error for an issue that fails Validate or
// was not raised, and EConflict when an issue of the practice that is not
// closed has the same Key.
func (db *DB) CreateIssue(ctx context.Context, i dtm.DataIssue) (dtm.DataIssue, error) {
	if err := i.Validate(); err != nil {
		return dtm.DataIssue{}, err
	}
	if i.Status == "" || len(i.History) == 0 {
		return dtm.DataIssue{}, dtm.Errorf(dtm.EInvalid, "issue: raise it (DataIssue.Apply) before storing it")
	}
	resources, err := json.Marshal(issueList(i.Resources))
	if err != nil {
		return dtm.DataIssue{}, fmt.Errorf("create issue: %w", err)
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return dtm.DataIssue{}, fmt.Errorf("create issue: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO data_issues (practice, key, status, severity, category, rule, title, text,
		resources, resource_count, outcome, raised_by, raised_us, updated_us, awaiting_us, responded_us, closed_us)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		i.Practice, i.Key, i.Status, i.Severity, i.Category, i.Rule, i.Title, i.Text, string(resources), i.ResourceCount,
		issueBlob(i.Outcome), i.RaisedBy, toMicros(i.RaisedAt), toMicros(i.UpdatedAt), toMicros(i.AwaitingSince),
		toMicros(i.RespondedAt), toMicros(i.ClosedAt))
	if err != nil {
		return dtm.DataIssue{}, issueWriteErr("create issue", i.Key, err)
	}
	n, err := res.LastInsertId()
	if err != nil {
		return dtm.DataIssue{}, fmt.Errorf("create issue: %w", err)
	}
	for _, e := range i.History {
		if err := insertIssueEvent(ctx, tx, n, e); err != nil {
			return dtm.DataIssue{}, err
		}
	}
	out, err := issueFrom(ctx, tx, i.Practice, n)
	if err != nil {
		return dtm.DataIssue{}, err
	}
	if err := tx.Commit(); err != nil {
		return dtm.DataIssue{}, fmt.Errorf("create issue: %w", err)
	}
	return out, nil
}

// Issue returns one issue of the practice with its history, or an
// ENotFound error.
func (db *DB) Issue(ctx context.Context, practice, id string) (dtm.DataIssue, error) {
	n, ok := issueNumber(id)
	if !ok {
		return dtm.DataIssue{}, dtm.Errorf(dtm.ENotFound, "issue %.20s not found", id)
	}
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return dtm.DataIssue{}, fmt.Errorf("issue: %w", err)
	}
	defer tx.Rollback()
	return issueFrom(ctx, tx, practice, n)
}

// ListIssues returns the issues matching q ordered by ID, without History,
// Resources and Outcome.
func (db *DB) ListIssues(ctx context.Context, q dtm.IssueQuery) ([]dtm.DataIssue, error) {
	var where []string
	var args []any
	for _, f := range []struct{ col, v string }{{"practice", q.Practice}, {"category", q.Category}, {"rule", q.Rule}, {"key", q.Key}} {
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	if len(q.Statuses) > 0 {
		where = append(where, "status IN (?"+strings.Repeat(", ?", len(q.Statuses)-1)+")")
		for _, s := range q.Statuses {
			args = append(args, s)
		}
	}
	query := `SELECT ` + listCols + ` FROM data_issues`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id`
	if q.Limit > 0 {
		query += ` LIMIT ` + strconv.Itoa(q.Limit)
	}
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list issues: %w", err)
	}
	defer rows.Close()
	out := []dtm.DataIssue{}
	for rows.Next() {
		i, err := scanIssue(rows)
		if err != nil {
			return nil, fmt.Errorf("list issues: %w", err)
		}
		i.Resources = nil
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list issues: %w", err)
	}
	return out, nil
}

// UpdateIssue applies a to the issue and stores the result and the new
// event in one transaction (the write lock serialises updates). It returns
// ENotFound for an unknown issue, DataIssue.Apply's error when the action
// is not allowed, and EConflict when a reopened issue's Key is taken.
func (db *DB) UpdateIssue(ctx context.Context, practice, id string, a dtm.IssueAction) (dtm.DataIssue, error) {
	n, ok := issueNumber(id)
	if !ok {
		return dtm.DataIssue{}, dtm.Errorf(dtm.ENotFound, "issue %.20s not found", id)
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return dtm.DataIssue{}, fmt.Errorf("update issue: %w", err)
	}
	defer tx.Rollback()
	i, err := issueFrom(ctx, tx, practice, n)
	if err != nil {
		return dtm.DataIssue{}, err
	}
	if err := i.Apply(a); err != nil {
		return dtm.DataIssue{}, err
	}
	resources, err := json.Marshal(issueList(i.Resources))
	if err != nil {
		return dtm.DataIssue{}, fmt.Errorf("update issue: %w", err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE data_issues SET status = ?, severity = ?, title = ?, resources = ?,
		resource_count = ?, outcome = ?, updated_us = ?, awaiting_us = ?, responded_us = ?, closed_us = ? WHERE id = ?`,
		i.Status, i.Severity, i.Title, string(resources), i.ResourceCount, issueBlob(i.Outcome),
		toMicros(i.UpdatedAt), toMicros(i.AwaitingSince), toMicros(i.RespondedAt), toMicros(i.ClosedAt), n)
	if err != nil {
		return dtm.DataIssue{}, issueWriteErr("update issue", i.Key, err)
	}
	if err := insertIssueEvent(ctx, tx, n, i.History[len(i.History)-1]); err != nil {
		return dtm.DataIssue{}, err
	}
	if err := tx.Commit(); err != nil {
		return dtm.DataIssue{}, fmt.Errorf("update issue: %w", err)
	}
	return i, nil
}

// issueFrom reads one issue of the practice with its history through q.
func issueFrom(ctx context.Context, q querier, practice string, n int64) (dtm.DataIssue, error) {
	i, err := scanIssue(q.QueryRowContext(ctx, `SELECT `+issueCols+` FROM data_issues WHERE id = ? AND practice = ?`, n, practice))
	if errors.Is(err, sql.ErrNoRows) {
		return i, dtm.Errorf(dtm.ENotFound, "issue %d not found", n)
	} else if err != nil {
		return i, fmt.Errorf("issue: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT seq, at_us, actor, action, from_status, to_status, text
		FROM data_issue_events WHERE issue = ? ORDER BY seq`, n)
	if err != nil {
		return i, fmt.Errorf("issue history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e dtm.IssueEvent
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.From, &e.To, &e.Text); err != nil {
			return i, fmt.Errorf("issue history: %w", err)
		}
		e.At = fromMicros(at)
		i.History = append(i.History, e)
	}
	if err := rows.Err(); err != nil {
		return i, fmt.Errorf("issue history: %w", err)
	}
	return i, nil
}

func scanIssue(s scanner) (dtm.DataIssue, error) {
	var i dtm.DataIssue
	var n, raised, updated, awaiting, responded, closed int64
	var resources string
	err := s.Scan(&n, &i.Practice, &i.Key, &i.Status, &i.Severity, &i.Category, &i.Rule, &i.Title, &i.Text,
		&resources, &i.ResourceCount, &i.Outcome, &i.RaisedBy, &raised, &updated, &awaiting, &responded, &closed)
	if err != nil {
		return i, err
	}
	i.ID = strconv.FormatInt(n, 10)
	i.RaisedAt, i.UpdatedAt, i.AwaitingSince = fromMicros(raised), fromMicros(updated), fromMicros(awaiting)
	i.RespondedAt, i.ClosedAt = fromMicros(responded), fromMicros(closed)
	if err := json.Unmarshal([]byte(resources), &i.Resources); err != nil {
		return i, fmt.Errorf("issue %d resources: %w", n, err)
	}
	if len(i.Resources) == 0 {
		i.Resources = nil
	}
	return i, nil
}

// issueExecer is a *sql.Tx or *sql.DB.
type issueExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertIssueEvent(ctx context.Context, tx issueExecer, issue int64, e dtm.IssueEvent) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO data_issue_events (issue, seq, at_us, actor, action, from_status, to_status, text)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, issue, e.Seq, toMicros(e.At), e.Actor, e.Action, e.From, e.To, e.Text)
	if err != nil {
		return fmt.Errorf("issue history: %w", err)
	}
	return nil
}

// issueNumber parses an issue id; ok is false for anything but a positive
// decimal number.
func issueNumber(id string) (int64, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil && n > 0 && strconv.FormatInt(n, 10) == id
}

// issueWriteErr maps a uniqueness violation of the active-key index to
// EConflict.
func issueWriteErr(op, key string, err error) error {
	if strings.Contains(err.Error(), "UNIQUE") {
		return dtm.Errorf(dtm.EConflict, "an issue with key %.200q is already active for this practice", key)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func issueList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func issueBlob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
