package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dtm-project/dtm"
)

var _ dtm.TargetState = (*DB)(nil)

const pullCols = `id, source, practice, status, since_us, status_url, manifest, transaction_us,
	src_last_updated_us, src_watermark_us, src_freshness, src_lag_us, started_us, available_us,
	finished_us, counts, error`

// pullArgs returns p's columns in pullCols order.
func pullArgs(p dtm.PullRecord) ([]any, error) {
	counts, err := json.Marshal(p.Counts)
	if err != nil {
		return nil, err
	}
	return []any{p.ID, p.Source, p.Practice, p.Status, toMicros(p.Since), p.StatusURL, p.Manifest,
		toMicros(p.TransactionTime), toMicros(p.SourceLastUpdated), toMicros(p.SourceWatermark),
		p.SourceFreshness, p.SourceLag.Microseconds(), toMicros(p.StartedAt), toMicros(p.AvailableAt),
		toMicros(p.FinishedAt), string(counts), p.Error}, nil
}

func scanPull(s scanner) (dtm.PullRecord, error) {
	var p dtm.PullRecord
	var since, tt, lu, wm, lag, started, avail, fin int64
	var counts string
	if err := s.Scan(&p.ID, &p.Source, &p.Practice, &p.Status, &since, &p.StatusURL, &p.Manifest, &tt,
		&lu, &wm, &p.SourceFreshness, &lag, &started, &avail, &fin, &counts, &p.Error); err != nil {
		return dtm.PullRecord{}, err
	}
	p.Since, p.TransactionTime = fromMicros(since), fromMicros(tt)
	p.SourceLastUpdated, p.SourceWatermark = fromMicros(lu), fromMicros(wm)
	p.SourceLag = time.Duration(lag) * time.Microsecond
	p.StartedAt, p.AvailableAt, p.FinishedAt = fromMicros(started), fromMicros(avail), fromMicros(fin)
	if err := json.Unmarshal([]byte(counts), &p.Counts); err != nil {
		return dtm.PullRecord{}, fmt.Errorf("pull counts: %w", err)
	}
	return p, nil
}

// Checkpoint returns the checkpoint of (source, practice), with a zero
// TransactionTime when there is none.
func (db *DB) Checkpoint(ctx context.Context, source, practice string) (dtm.Checkpoint, error) {
	cp := dtm.Checkpoint{Source: source, Practice: practice}
	var tt, updated int64
	err := db.r.QueryRowContext(ctx, `SELECT transaction_us, pull, updated_us FROM target_checkpoints
		WHERE source = ? AND practice = ?`, source, practice).Scan(&tt, &cp.Pull, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return cp, nil
	} else if err != nil {
		return dtm.Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	cp.TransactionTime, cp.UpdatedAt = fromMicros(tt), fromMicros(updated)
	return cp, nil
}

// SavePull creates or replaces the pull record p.
func (db *DB) SavePull(ctx context.Context, p dtm.PullRecord) error {
	if err := savePull(ctx, db.w, p); err != nil {
		return fmt.Errorf("save pull: %w", err)
	}
	return nil
}

// targetExecer is what savePull needs of a *sql.DB or *sql.Tx.
type targetExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func savePull(ctx context.Context, e targetExecer, p dtm.PullRecord) error {
	if p.ID == "" {
		return dtm.Errorf(dtm.EInvalid, "pull needs an id")
	}
	args, err := pullArgs(p)
	if err != nil {
		return err
	}
	_, err = e.ExecContext(ctx, `INSERT OR REPLACE INTO target_pulls (`+pullCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	return err
}

// CompletePull saves p as complete and advances the checkpoint of
// (p.Source, p.Practice) to p.TransactionTime, never backwards, in one
// transaction.
func (db *DB) CompletePull(ctx context.Context, p dtm.PullRecord) error {
	p.Status = dtm.PullComplete
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("complete pull: %w", err)
	}
	defer tx.Rollback()
	if err := savePull(ctx, tx, p); err != nil {
		return fmt.Errorf("complete pull: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO target_checkpoints (source, practice, transaction_us, pull, updated_us)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (source, practice) DO UPDATE SET transaction_us = excluded.transaction_us,
			pull = excluded.pull, updated_us = excluded.updated_us
		WHERE excluded.transaction_us >= target_checkpoints.transaction_us`,
		p.Source, p.Practice, toMicros(p.TransactionTime), p.ID, db.clock.Now().UnixMicro()); err != nil {
		return fmt.Errorf("complete pull: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("complete pull: %w", err)
	}
	return nil
}

// Pull returns the pull with the given id, or an ENotFound error.
func (db *DB) Pull(ctx context.Context, id string) (dtm.PullRecord, error) {
	p, err := scanPull(db.r.QueryRowContext(ctx, `SELECT `+pullCols+` FROM target_pulls WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return dtm.PullRecord{}, dtm.Errorf(dtm.ENotFound, "pull not found")
	} else if err != nil {
		return dtm.PullRecord{}, fmt.Errorf("pull: %w", err)
	}
	return p, nil
}

// ActivePull returns the latest unfinished pull of (source, practice).
func (db *DB) ActivePull(ctx context.Context, source, practice string) (dtm.PullRecord, bool, error) {
	p, err := scanPull(db.r.QueryRowContext(ctx, `SELECT `+pullCols+` FROM target_pulls
		WHERE source = ? AND practice = ? AND status IN (?, ?, ?)
		ORDER BY started_us DESC, rowid DESC LIMIT 1`,
		source, practice, dtm.PullKickedOff, dtm.PullDownloading, dtm.PullApplying))
	if errors.Is(err, sql.ErrNoRows) {
		return dtm.PullRecord{}, false, nil
	} else if err != nil {
		return dtm.PullRecord{}, false, fmt.Errorf("active pull: %w", err)
	}
	return p, true, nil
}

// Pulls returns up to limit pulls of the practice, newest first.
func (db *DB) Pulls(ctx context.Context, practice string, limit int) ([]dtm.PullRecord, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+pullCols+` FROM target_pulls WHERE practice = ?
		ORDER BY started_us DESC, rowid DESC LIMIT ?`, practice, limit)
	if err != nil {
		return nil, fmt.Errorf("pulls: %w", err)
	}
	defer rows.Close()
	var out []dtm.PullRecord
	for rows.Next() {
		p, err := scanPull(rows)
		if err != nil {
			return nil, fmt.Errorf("pulls: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pulls: %w", err)
	}
	return out, nil
}

// SaveFile creates or replaces a pull's file record, keeping its place in
// the order of Files.
func (db *DB) SaveFile(ctx context.Context, f dtm.PullFile) error {
	counts, err := json.Marshal(f.Counts)
	if err != nil {
		return fmt.Errorf("save file: %w", err)
	}
	_, err = db.w.ExecContext(ctx, `INSERT INTO target_files
		(pull, url, kind, type, count, path, sha256, bytes, lines, verified, applied, counts)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (pull, url) DO UPDATE SET kind = excluded.kind, type = excluded.type,
			count = excluded.count, path = excluded.path, sha256 = excluded.sha256, bytes = excluded.bytes,
			lines = excluded.lines, verified = excluded.verified, applied = excluded.applied,
			counts = excluded.counts`,
		f.Pull, f.URL, f.Kind, f.Type, f.Count, f.Path, f.SHA256, f.Bytes, f.Lines, f.Verified, f.Applied, string(counts))
	if err != nil {
		return fmt.Errorf("save file: %w", err)
	}
	return nil
}

// Files returns a pull's file records in the order they were first saved.
func (db *DB) Files(ctx context.Context, pull string) ([]dtm.PullFile, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT pull, url, kind, type, count, path, sha256, bytes, lines,
		verified, applied, counts FROM target_files WHERE pull = ? ORDER BY rowid`, pull)
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	defer rows.Close()
	var out []dtm.PullFile
	for rows.Next() {
		var f dtm.PullFile
		var counts string
		if err := rows.Scan(&f.Pull, &f.URL, &f.Kind, &f.Type, &f.Count, &f.Path, &f.SHA256, &f.Bytes,
			&f.Lines, &f.Verified, &f.Applied, &counts); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
		if err := json.Unmarshal([]byte(counts), &f.Counts); err != nil {
			return nil, fmt.Errorf("file counts: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	return out, nil
}

// Quarantine stores records in one transaction, replacing any with the
// same (Pull, Reason, Type, ID, Where).
func (db *DB) Quarantine(ctx context.Context, recs []dtm.QuarantineRecord) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO target_quarantine
		(pull, practice, reason, type, id, version, location, json, outcome, at_us)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (pull, reason, type, id, location) DO UPDATE SET practice = excluded.practice,
			version = excluded.version, json = excluded.json, outcome = excluded.outcome, at_us = excluded.at_us`)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	defer stmt.Close()
	for _, q := range recs {
		if _, err := stmt.ExecContext(ctx, q.Pull, q.Practice, q.Reason, q.Type, q.ID, q.Version, q.Where,
			q.JSON, q.Outcome, toMicros(q.At)); err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// Quarantined calls fn with the practice's quarantine records (of one pull
// when pull is not ""), in the order they were first stored.
func (db *DB) Quarantined(ctx context.Context, practice, pull string, fn func(dtm.QuarantineRecord) error) error {
	rows, err := db.r.QueryContext(ctx, `SELECT pull, practice, reason, type, id, version, location, json,
		outcome, at_us FROM target_quarantine WHERE practice = ? AND (? = '' OR pull = ?) ORDER BY seq`,
		practice, pull, pull)
	if err != nil {
		return fmt.Errorf("quarantined: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var q dtm.QuarantineRecord
		var at int64
		if err := rows.Scan(&q.Pull, &q.Practice, &q.Reason, &q.Type, &q.ID, &q.Version, &q.Where,
			&q.JSON, &q.Outcome, &at); err != nil {
			return fmt.Errorf("quarantined: %w", err)
		}
		q.At = fromMicros(at)
		if err := fn(q); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("quarantined: %w", err)
	}
	return nil
}
