package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dtm-project/dtm"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var _ dtm.Cutovers = (*DB)(nil)

// This file mirrors sqlite/cutover.go.

// SaveCutoverPlan creates or replaces the plan p.
func (db *DB) SaveCutoverPlan(ctx context.Context, p dtm.Plan) error {
	if p.ID == "" {
		return dtm.Errorf(dtm.EInvalid, "plan needs an id")
	}
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	_, err = db.pool.Exec(ctx, `INSERT INTO cutover_plans (id, practice, created_us, doc) VALUES ($1, $2, $3, $4)
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
	err := cutoverDoc(db.pool.QueryRow(ctx, `SELECT doc FROM cutover_plans WHERE id = $1`, id), &p)
	if errors.Is(err, pgx.ErrNoRows) {
		return dtm.Plan{}, dtm.Errorf(dtm.ENotFound, "no cutover plan %s", id)
	} else if err != nil {
		return dtm.Plan{}, fmt.Errorf("plan: %w", err)
	}
	return p, nil
}

// CutoverPlans returns the plans of practice ("" for all), newest first.
func (db *DB) CutoverPlans(ctx context.Context, practice string) ([]dtm.Plan, error) {
	return cutoverDocs[dtm.Plan](ctx, db, "plans", `SELECT doc FROM cutover_plans WHERE $1 = '' OR practice = $1
		ORDER BY created_us DESC, id DESC`, practice)
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
	_, err = db.pool.Exec(ctx, `INSERT INTO cutover_confirmations (id, plan, doc) VALUES ($1, $2, $3)`, c.ID, c.Plan, string(doc))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return dtm.Errorf(dtm.EConflict, "confirmation %s exists", c.ID)
	} else if err != nil {
		return fmt.Errorf("add confirmation: %w", err)
	}
	return nil
}

// Confirmations returns the confirmations of plan in the order added.
func (db *DB) Confirmations(ctx context.Context, plan string) ([]dtm.Confirmation, error) {
	return cutoverDocs[dtm.Confirmation](ctx, db, "confirmations",
		`SELECT doc FROM cutover_confirmations WHERE plan = $1 ORDER BY seq`, plan)
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
	var tag pgconn.CommandTag
	if r.Version == 1 {
		tag, err = db.pool.Exec(ctx, `INSERT INTO cutover_runs (id, plan, started_us, version, doc)
			VALUES ($1, $2, $3, 1, $4) ON CONFLICT (id) DO NOTHING`, r.ID, r.Plan, toMicros(r.StartedAt), string(doc))
	} else {
		tag, err = db.pool.Exec(ctx, `UPDATE cutover_runs SET version = $1, doc = $2 WHERE id = $3 AND version = $4`,
			r.Version, string(doc), r.ID, r.Version-1)
	}
	if err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return dtm.Errorf(dtm.EConflict, "run %s was changed by someone else (version %d)", r.ID, r.Version-1)
	}
	return nil
}

// CutoverRun returns the run id, or an ENotFound error.
func (db *DB) CutoverRun(ctx context.Context, id string) (dtm.CutoverRun, error) {
	var r dtm.CutoverRun
	err := cutoverDoc(db.pool.QueryRow(ctx, `SELECT doc FROM cutover_runs WHERE id = $1`, id), &r)
	if errors.Is(err, pgx.ErrNoRows) {
		return dtm.CutoverRun{}, dtm.Errorf(dtm.ENotFound, "no cutover run %s", id)
	} else if err != nil {
		return dtm.CutoverRun{}, fmt.Errorf("run: %w", err)
	}
	return r, nil
}

// CutoverRuns returns the runs of plan, newest first.
func (db *DB) CutoverRuns(ctx context.Context, plan string) ([]dtm.CutoverRun, error) {
	return cutoverDocs[dtm.CutoverRun](ctx, db, "runs",
		`SELECT doc FROM cutover_runs WHERE plan = $1 ORDER BY started_us DESC, id DESC`, plan)
}

// AppendRunEvent appends e to its run's log with the next Seq. Appends to
// one run are serialised by a transaction-scoped advisory lock.
func (db *DB) AppendRunEvent(ctx context.Context, e dtm.RunEvent) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('cutover_events:' || $1, 0))`, e.Run); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM cutover_events WHERE run = $1`, e.Run).Scan(&e.Seq); err != nil {
			return err
		}
		doc, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO cutover_events (run, seq, doc) VALUES ($1, $2, $3)`, e.Run, e.Seq, string(doc))
		return err
	})
	if err != nil {
		return fmt.Errorf("append run event: %w", err)
	}
	return nil
}

// RunEvents returns the log of run in order.
func (db *DB) RunEvents(ctx context.Context, run string) ([]dtm.RunEvent, error) {
	return cutoverDocs[dtm.RunEvent](ctx, db, "run events", `SELECT doc FROM cutover_events WHERE run = $1 ORDER BY seq`, run)
}

// RecordReconcile stores a reconciliation outcome.
func (db *DB) RecordReconcile(ctx context.Context, s dtm.ReconcileSummary) error {
	doc, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("record reconcile: %w", err)
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO cutover_reconciles (practice, at_us, doc) VALUES ($1, $2, $3)`,
		s.Practice, toMicros(s.At), string(doc)); err != nil {
		return fmt.Errorf("record reconcile: %w", err)
	}
	return nil
}

// ReconcileHistory returns up to limit outcomes of practice, newest first.
func (db *DB) ReconcileHistory(ctx context.Context, practice string, limit int) ([]dtm.ReconcileSummary, error) {
	return cutoverDocs[dtm.ReconcileSummary](ctx, db, "reconcile history", `SELECT doc FROM cutover_reconciles
		WHERE practice = $1 ORDER BY at_us DESC, seq DESC LIMIT $2`, practice, limit)
}

// cutoverDoc scans one JSON doc column into v.
func cutoverDoc(row pgx.Row, v any) error {
	var doc string
	if err := row.Scan(&doc); err != nil {
		return err
	}
	return json.Unmarshal([]byte(doc), v)
}

// cutoverDocs runs query and decodes every row's JSON doc column.
func cutoverDocs[T any](ctx context.Context, db *DB, op, query string, args ...any) ([]T, error) {
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) {
		var v T
		return v, cutoverDoc(row, &v)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}
