package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/jackc/pgx/v5"
)

const practiceCols = `ods, name, created_us, watermark_us, last_updated_us, frozen`

func scanPractice(row pgx.CollectableRow) (dtm.Practice, error) {
	var p dtm.Practice
	var created, watermark, updated int64
	if err := row.Scan(&p.ODS, &p.Name, &created, &watermark, &updated, &p.Frozen); err != nil {
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
	if _, err := db.pool.Exec(ctx, `INSERT INTO practices (ods, name, created_us) VALUES ($1, $2, $3)
		ON CONFLICT (ods) DO NOTHING`, p.ODS, p.Name, db.clock.Now().UnixMicro()); err != nil {
		return dtm.Practice{}, fmt.Errorf("create practice: %w", storageError(err))
	}
	out, err := db.Practice(ctx, p.ODS)
	if err != nil {
		return dtm.Practice{}, fmt.Errorf("create practice: %w", err)
	}
	return out, nil
}

// Practice returns the practice with ODS code ods, or an ENotFound error.
func (db *DB) Practice(ctx context.Context, ods string) (dtm.Practice, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+practiceCols+` FROM practices WHERE ods = $1`, ods)
	if err != nil {
		return dtm.Practice{}, fmt.Errorf("practice: %w", err)
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanPractice)
	if errors.Is(err, pgx.ErrNoRows) {
		return dtm.Practice{}, dtm.Errorf(dtm.ENotFound, "practice %s not found", ods)
	} else if err != nil {
		return dtm.Practice{}, fmt.Errorf("practice: %w", err)
	}
	return p, nil
}

// ListPractices returns every practice ordered by ODS code.
func (db *DB) ListPractices(ctx context.Context) ([]dtm.Practice, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+practiceCols+` FROM practices ORDER BY ods`)
	if err != nil {
		return nil, fmt.Errorf("list practices: %w", err)
	}
	ps, err := pgx.CollectRows(rows, scanPractice)
	if err != nil {
		return nil, fmt.Errorf("list practices: %w", err)
	}
	return ps, nil
}

// SetWatermark records that the DTM holds every source change up to t
// (truncated to microseconds). An earlier t than the stored one is ignored.
// It returns an ENotFound error for an unknown practice.
func (db *DB) SetWatermark(ctx context.Context, ods string, t time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE practices SET watermark_us = greatest(watermark_us, $1) WHERE ods = $2`, toMicros(t), ods)
	if err != nil {
		return fmt.Errorf("set watermark: %w", storageError(err))
	}
	if tag.RowsAffected() == 0 {
		return dtm.Errorf(dtm.ENotFound, "practice %s not found", ods)
	}
	return nil
}

// SetFrozen freezes (or unfreezes) ingest for a practice. It takes the
// store-wide commit lock, so it waits for an Apply in progress; once it has
// returned true, no further write to the practice commits. It returns an
// ENotFound error for an unknown practice.
func (db *DB) SetFrozen(ctx context.Context, ods string, frozen bool) error {
	var n int64
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := readHead(ctx, tx, " FOR UPDATE"); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE practices SET frozen = $1 WHERE ods = $2`, frozen, ods)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("set frozen: %w", storageError(err))
	}
	if n == 0 {
		return dtm.Errorf(dtm.ENotFound, "practice %s not found", ods)
	}
	return nil
}
