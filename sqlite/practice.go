package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dtm-project/dtm"
)

const practiceCols = `ods, name, created_us, watermark_us, last_updated_us, frozen`

func scanPractice(s scanner) (dtm.Practice, error) {
	var p dtm.Practice
	var created, watermark, updated int64
	if err := s.Scan(&p.ODS, &p.Name, &created, &watermark, &updated, &p.Frozen); err != nil {
		return dtm.Practice{}, err
	}
	p.CreatedAt, p.Watermark, p.LastUpdated = fromMicros(created), fromMicros(watermark), fromMicros(updated)
	return p, nil
}

// CreatePractice registers p (its ODS code and name; CreatedAt is set from
// the clock) and returns it as stored. An existing practice is left
// unchanged and returned. It returns an EInvalid error for a malformed ODS
// code.
func (db *DB) CreatePractice(ctx context.Context, p dtm.Practice) (dtm.Practice, error) {
	if !dtm.ValidODS(p.ODS) {
		return dtm.Practice{}, dtm.Errorf(dtm.EInvalid, "invalid ODS code %q", p.ODS)
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return dtm.Practice{}, fmt.Errorf("create practice: %w", db.storageError(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO practices (ods, name, created_us) VALUES (?, ?, ?)
		ON CONFLICT (ods) DO NOTHING`, p.ODS, p.Name, db.clock.Now().UnixMicro()); err != nil {
		return dtm.Practice{}, fmt.Errorf("create practice: %w", db.storageError(err))
	}
	out, err := scanPractice(tx.QueryRowContext(ctx, `SELECT `+practiceCols+` FROM practices WHERE ods = ?`, p.ODS))
	if err != nil {
		return dtm.Practice{}, fmt.Errorf("create practice: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return dtm.Practice{}, fmt.Errorf("create practice: %w", db.storageError(err))
	}
	return out, nil
}

// Practice returns the practice with ODS code ods, or an ENotFound error.
func (db *DB) Practice(ctx context.Context, ods string) (dtm.Practice, error) {
	p, err := scanPractice(db.r.QueryRowContext(ctx, `SELECT `+practiceCols+` FROM practices WHERE ods = ?`, ods))
	if errors.Is(err, sql.ErrNoRows) {
		return dtm.Practice{}, dtm.Errorf(dtm.ENotFound, "practice %s not found", ods)
	} else if err != nil {
		return dtm.Practice{}, fmt.Errorf("practice: %w", err)
	}
	return p, nil
}

// ListPractices returns every practice ordered by ODS code.
func (db *DB) ListPractices(ctx context.Context) ([]dtm.Practice, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+practiceCols+` FROM practices ORDER BY ods`)
	if err != nil {
		return nil, fmt.Errorf("list practices: %w", err)
	}
	defer rows.Close()
	var ps []dtm.Practice
	for rows.Next() {
		p, err := scanPractice(rows)
		if err != nil {
			return nil, fmt.Errorf("list practices: %w", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list practices: %w", err)
	}
	return ps, nil
}

// SetWatermark records that the DTM holds every source change up to t
// (truncated to microseconds). An earlier t than the stored one is ignored.
// It returns an ENotFound error for an unknown practice.
func (db *DB) SetWatermark(ctx context.Context, ods string, t time.Time) error {
	return db.updatePractice(ctx, "set watermark", ods,
		`UPDATE practices SET watermark_us = max(watermark_us, ?) WHERE ods = ?`, toMicros(t), ods)
}

// SetFrozen freezes (or unfreezes) ingest for a practice. It takes the
// store-wide write lock, so it waits for an Apply in progress; once it has
// returned true, no further write to the practice commits. It returns an
// ENotFound error for an unknown practice.
func (db *DB) SetFrozen(ctx context.Context, ods string, frozen bool) error {
	return db.updatePractice(ctx, "set frozen", ods, `UPDATE practices SET frozen = ? WHERE ods = ?`, frozen, ods)
}

// updatePractice runs one UPDATE of a practice row in a write transaction.
func (db *DB) updatePractice(ctx context.Context, op, ods, query string, args ...any) error {
	res, err := db.w.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", op, db.storageError(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	} else if n == 0 {
		return dtm.Errorf(dtm.ENotFound, "practice %s not found", ods)
	}
	return nil
}
