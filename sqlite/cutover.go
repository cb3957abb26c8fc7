package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dtm-project/dtm"
)

var _ dtm.Cutovers = (*DB)(nil)

// SaveCutoverPlan creates or replaces the plan p.
func (db *DB) SaveCutoverPlan(ctx context.Context, p dtm.Plan) error {
	if p.ID == "" {
		return dtm.Errorf(dtm.EInvalid, "plan needs an id")
	}
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	_, err = db.w.ExecContext(ctx, `INSERT INTO cutover_plans (id, practice, created_us, doc) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET practice = excluded.practice, doc = excluded.doc`,
		p.ID, p.Practice, toMicros(p.CreatedAt), string(doc))
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	return nil
}

// CutoverPlan returns the plan id, or an ENotFound error.
func (db *DB) CutoverPlan(ctx context.Context, id string) (dtm.Plan, error) {
	var p dtm.Plan
	err := cutoverDoc(db.r.QueryRowContext(ctx, `SELECT doc FROM cutover_plans WHERE id = ?`, id), &p)
	if errors.Is(err, sql.ErrNoRows) {
		return dtm.Plan{}, dtm.Errorf(dtm.ENotFound, "no cutover plan %s", id)
	} else if err != nil {
		return dtm.Plan{}, fmt.Errorf("plan: %w", err)
	}
	return p, nil
}

// CutoverPlans returns the plans of practice ("" for all), newest first.
func (db *DB) CutoverPlans(ctx context.Context, practice string) ([]dtm.Plan, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT doc FROM cutover_plans WHERE ? = '' OR practice = ?
		ORDER BY created_us DESC, id DESC`, practice, practice)
	if err != nil {
		return nil, fmt.Errorf("plans: %w", err)
	}
	return cutoverDocs[dtm.Plan](rows, "plans")
}

// AddConfirmation appends c; it returns an EConflict error when its ID is
// taken.
func (db *DB) AddConfirmation(ctx context.Context, c dtm.Confirmation) error {
	if c.ID == "" || c.Plan == "" {
		return dtm.Errorf(dtm.EInvalid, "confirmation needs an id and a plan")
	}
	doc, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("add confirmation: %w", err)
	}
	_, err = db.w.ExecContext(ctx, `INSERT INTO cutover_confirmations (id, plan, doc) VALUES (?, ?, ?)`, c.ID, c.Plan, string(doc))
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return dtm.Errorf(dtm.EConflict, "confirmation %s exists", c.ID)
	} else if err != nil {
		return fmt.Errorf("add confirmation: %w", err)
	}
	return nil
}

// Confirmations returns the confirmations of plan in the order added.
func (db *DB) Confirmations(ctx context.Context, plan string) ([]dtm.Confirmation, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT doc FROM cutover_confirmations WHERE plan = ? ORDER BY seq`, plan)
	if err != nil {
		return nil, fmt.Errorf("confirmations: %w", err)
	}
	return cutoverDocs[dtm.Confirmation](rows, "confirmations")
}

// SaveCutoverRun stores r when the stored version is r.Version-1 (none for
// version 1), and returns an EConflict error otherwise.
func (db *DB) SaveCutoverRun(ctx context.Context, r dtm.CutoverRun) error {
	if r.ID == "" || r.Version < 1 {
		return dtm.Errorf(dtm.EInvalid, "run needs an id and a version of at least 1")
	}
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	var res sql.Result
	if r.Version == 1 {
		res, err = db.w.ExecContext(ctx, `INSERT INTO cutover_runs (id, plan, started_us, version, doc)
			VALUES (?, ?, ?, 1, ?) ON CONFLICT (id) DO NOTHING`, r.ID, r.Plan, toMicros(r.StartedAt), string(doc))
	} else {
		res, err = db.w.ExecContext(ctx, `UPDATE cutover_runs SET version = ?, doc = ? WHERE id = ? AND version = ?`,
			r.Version, string(doc), r.ID, r.Version-1)
	}
	if err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("save run: %w", err)
	} else if n != 1 {
		return dtm.Errorf(dtm.EConflict, "run %s was changed by someone else (version %d)", r.ID, r.Version-1)
	}
	return nil
}

// CutoverRun returns the run id, or an ENotFound error.
func (db *DB) CutoverRun(ctx context.Context, id string) (dtm.CutoverRun, error) {
	var r dtm.CutoverRun
	err := cutoverDoc(db.r.QueryRowContext(ctx, `SELECT doc FROM cutover_runs WHERE id = ?`, id), &r)
	if errors.Is(err, sql.ErrNoRows) {
		return dtm.CutoverRun{}, dtm.Errorf(dtm.ENotFound, "no cutover run %s", id)
	} else if err != nil {
		return dtm.CutoverRun{}, fmt.Errorf("run: %w", err)
	}
	return r, nil
}

// CutoverRuns returns the runs of plan, newest first.
func (db *DB) CutoverRuns(ctx context.Context, plan string) ([]dtm.CutoverRun, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT doc FROM cutover_runs WHERE plan = ? ORDER BY started_us DESC, id DESC`, plan)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	return cutoverDocs[dtm.CutoverRun](rows, "runs")
}

// AppendRunEvent appends e to its run's log with the next Seq.
func (db *DB) AppendRunEvent(ctx context.Context, e dtm.RunEvent) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append run event: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM cutover_events WHERE run = ?`, e.Run).Scan(&e.Seq); err != nil {
		return fmt.Errorf("append run event: %w", err)
	}
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("append run event: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO cutover_events (run, seq, doc) VALUES (?, ?, ?)`, e.Run, e.Seq, string(doc)); err != nil {
		return fmt.Errorf("append run event: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append run event: %w", err)
	}
	return nil
}

// RunEvents returns the log of run in order.
func (db *DB) RunEvents(ctx context.Context, run string) ([]dtm.RunEvent, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT doc FROM cutover_events WHERE run = ? ORDER BY seq`, run)
	if err != nil {
		return nil, fmt.Errorf("run events: %w", err)
	}
	return cutoverDocs[dtm.RunEvent](rows, "run events")
}

// RecordReconcile stores a reconciliation outcome.
func (db *DB) RecordReconcile(ctx context.Context, s dtm.ReconcileSummary) error {
	doc, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("record reconcile: %w", err)
	}
	if _, err := db.w.ExecContext(ctx, `INSERT INTO cutover_reconciles (practice, at_us, doc) VALUES (?, ?, ?)`,
		s.Practice, toMicros(s.At), string(doc)); err != nil {
		return fmt.Errorf("record reconcile: %w", err)
	}
	return nil
}

// ReconcileHistory returns up to limit outcomes of practice, newest first.
func (db *DB) ReconcileHistory(ctx context.Context, practice string, limit int) ([]dtm.ReconcileSummary, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT doc FROM cutover_reconciles WHERE practice = ?
		ORDER BY at_us DESC, seq DESC LIMIT ?`, practice, limit)
	if err != nil {
		return nil, fmt.Errorf("reconcile history: %w", err)
	}
	return cutoverDocs[dtm.ReconcileSummary](rows, "reconcile history")
}

// cutoverDoc scans one JSON doc column into v.
func cutoverDoc(row *sql.Row, v any) error {
	var doc string
	if err := row.Scan(&doc); err != nil {
		return err
	}
	return json.Unmarshal([]byte(doc), v)
}

// cutoverDocs decodes every row's JSON doc column and closes rows.
func cutoverDocs[T any](rows *sql.Rows, op string) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		var v T
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}
