package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dtm-project/dtm"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// This file implements dtm.Issues (migration 0030_issues.sql): the
// PostgreSQL twin of sqlite/issue.go; keep the two in step.

var _ dtm.Issues = (*DB)(nil)

const issueCols = `id, practice, key, status, severity, category, rule, title, text, resources, resource_count,
	outcome, raised_by, raised_us, updated_us, awaiting_us, responded_us, closed_us`

// issueListCols are issueCols with the bulky columns left empty.
const issueListCols = `id, practice, key, status, severity, category, rule, title, text, '[]', resource_count,
	NULL::bytea, raised_by, raised_us, updated_us, awaiting_us, responded_us, closed_us`

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
	resources, err := issueResources(i.Resources)
	if err != nil {
		return dtm.DataIssue{}, fmt.Errorf("create issue: %w", err)
	}
	var out dtm.DataIssue
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var n int64
		err := tx.QueryRow(ctx, `INSERT INTO data_issues (practice, key, status, severity, category, rule, title, text,
			resources, resource_count, outcome, raised_by, raised_us, updated_us, awaiting_us, responded_us, closed_us)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id`,
			i.Practice, i.Key, i.Status, i.Severity, i.Category, i.Rule, i.Title, i.Text, resources, i.ResourceCount,
			issueBlob(i.Outcome), i.RaisedBy, toMicros(i.RaisedAt), toMicros(i.UpdatedAt), toMicros(i.AwaitingSince),
			toMicros(i.RespondedAt), toMicros(i.ClosedAt)).Scan(&n)
		if err != nil {
			return issueWriteErr("create issue", i.Key, err)
		}
		for _, e := range i.History {
			if err := insertIssueEvent(ctx, tx, n, e); err != nil {
				return err
			}
		}
		out, err = issueFrom(ctx, tx, i.Practice, n, "")
		return err
	})
	if err != nil {
		return dtm.DataIssue{}, err
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
	var out dtm.DataIssue
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		var err error
		out, err = issueFrom(ctx, tx, practice, n, "")
		return err
	})
	return out, err
}

// ListIssues returns the issues matching q ordered by ID, without History,
// Resources and Outcome.
func (db *DB) ListIssues(ctx context.Context, q dtm.IssueQuery) ([]dtm.DataIssue, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	for _, f := range []struct{ col, v string }{{"practice", q.Practice}, {"category", q.Category}, {"rule", q.Rule}, {"key", q.Key}} {
		if f.v != "" {
			add(f.col+" = $%d", f.v)
		}
	}
	if len(q.Statuses) > 0 {
		add("status = ANY($%d)", q.Statuses)
	}
	query := `SELECT ` + issueListCols + ` FROM data_issues`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id`
	if q.Limit > 0 {
		query += ` LIMIT ` + strconv.Itoa(q.Limit)
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list issues: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (dtm.DataIssue, error) { return scanIssue(row) })
	if err != nil {
		return nil, fmt.Errorf("list issues: %w", err)
	}
	for k := range out {
		out[k].Resources = nil
	}
	if out == nil {
		out = []dtm.DataIssue{}
	}
	return out, nil
}

// UpdateIssue applies a to the issue and stores the result and the new
// event in one transaction, holding the issue's row lock (SELECT ... FOR
// UPDATE) so that concurrent updates from any replica apply one after the
// other. It returns ENotFound for an unknown issue, DataIssue.Apply's
// error when the action is not allowed, and EConflict when a reopened
// issue's Key is taken.
func (db *DB) UpdateIssue(ctx context.Context, practice, id string, a dtm.IssueAction) (dtm.DataIssue, error) {
	n, ok := issueNumber(id)
	if !ok {
		return dtm.DataIssue{}, dtm.Errorf(dtm.ENotFound, "issue %.20s not found", id)
	}
	var out dtm.DataIssue
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		i, err := issueFrom(ctx, tx, practice, n, " FOR UPDATE")
		if err != nil {
			return err
		}
		if err := i.Apply(a); err != nil {
			return err
		}
		resources, err := issueResources(i.Resources)
		if err != nil {
			return fmt.Errorf("update issue: %w", err)
		}
		_, err = tx.Exec(ctx, `UPDATE data_issues SET status = $1, severity = $2, title = $3, resources = $4,
			resource_count = $5, outcome = $6, updated_us = $7, awaiting_us = $8, responded_us = $9, closed_us = $10
			WHERE id = $11`,
			i.Status, i.Severity, i.Title, resources, i.ResourceCount, issueBlob(i.Outcome),
			toMicros(i.UpdatedAt), toMicros(i.AwaitingSince), toMicros(i.RespondedAt), toMicros(i.ClosedAt), n)
		if err != nil {
			return issueWriteErr("update issue", i.Key, err)
		}
		if err := insertIssueEvent(ctx, tx, n, i.History[len(i.History)-1]); err != nil {
			return err
		}
		out = i
		return nil
	})
	if err != nil {
		return dtm.DataIssue{}, err
	}
	return out, nil
}

// issueFrom reads one issue of the practice with its history in tx; lock
// is appended to the issue's SELECT (" FOR UPDATE" or "").
func issueFrom(ctx context.Context, tx pgx.Tx, practice string, n int64, lock string) (dtm.DataIssue, error) {
	rows, err := tx.Query(ctx, `SELECT `+issueCols+` FROM data_issues WHERE id = $1 AND practice = $2`+lock, n, practice)
	if err != nil {
		return dtm.DataIssue{}, fmt.Errorf("issue: %w", err)
	}
	i, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (dtm.DataIssue, error) { return scanIssue(row) })
	if errors.Is(err, pgx.ErrNoRows) {
		return i, dtm.Errorf(dtm.ENotFound, "issue %d not found", n)
	} else if err != nil {
		return i, fmt.Errorf("issue: %w", err)
	}
	rows, err = tx.Query(ctx, `SELECT seq, at_us, actor, action, from_status, to_status, text
		FROM data_issue_events WHERE issue = $1 ORDER BY seq`, n)
	if err != nil {
		return i, fmt.Errorf("issue history: %w", err)
	}
	i.History, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (dtm.IssueEvent, error) {
		var e dtm.IssueEvent
		var at int64
		err := row.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.From, &e.To, &e.Text)
		e.At = fromMicros(at)
		return e, err
	})
	if err != nil {
		return i, fmt.Errorf("issue history: %w", err)
	}
	return i, nil
}

func scanIssue(row pgx.Row) (dtm.DataIssue, error) {
	var i dtm.DataIssue
	var n, raised, updated, awaiting, responded, closed int64
	var resources string
	err := row.Scan(&n, &i.Practice, &i.Key, &i.Status, &i.Severity, &i.Category, &i.Rule, &i.Title, &i.Text,
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
	if len(i.Outcome) == 0 {
		i.Outcome = nil
	}
	return i, nil
}

func insertIssueEvent(ctx context.Context, tx pgx.Tx, issue int64, e dtm.IssueEvent) error {
	_, err := tx.Exec(ctx, `INSERT INTO data_issue_events (issue, seq, at_us, actor, action, from_status, to_status, text)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, issue, e.Seq, toMicros(e.At), e.Actor, e.Action, e.From, e.To, e.Text)
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

// issueResources encodes a resource list as a JSON array ("[]" for none).
func issueResources(rs []string) (string, error) {
	if rs == nil {
		rs = []string{}
	}
	b, err := json.Marshal(rs)
	return string(b), err
}

// issueWriteErr maps a uniqueness violation of the active-key index to
// EConflict.
func issueWriteErr(op, key string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return dtm.Errorf(dtm.EConflict, "an issue with key %.200q is already active for this practice", key)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func issueBlob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
