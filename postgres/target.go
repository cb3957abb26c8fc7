package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/jackc/pgx/v5"
)

var _ dtm.TargetState = (*DB)(nil)

// This file mirrors sqlite/target.go.

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

func scanPull(row pgx.Row) (dtm.PullRecord, error) {
	var p dtm.PullRecord
	var since, tt, lu, wm, lag, started, avail, fin int64
	var counts string
	if err := row.Scan(&p.ID, &p.Source, &p.Practice, &p.Status, &since, &p.StatusURL, &p.Manifest, &tt,
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
	err := db.pool.QueryRow(ctx, `SELECT transaction_us, pull, updated_us FROM target_checkpoints
		WHERE source = $1 AND practice = $2`, source, practice).Scan(&tt, &cp.Pull, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return cp, nil
	} else if err != nil {
		return dtm.Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	cp.TransactionTime, cp.UpdatedAt = fromMicros(tt), fromMicros(updated)
	return cp, nil
}

// SavePull creates or replaces the pull record p.
func (db *DB) SavePull(ctx context.Context, p dtm.PullRecord) error {
	q, args, err := savePullQuery(p)
	if err != nil {
		return fmt.Errorf("save pull: %w", err)
	}
	if _, err := db.pool.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("save pull: %w", err)
	}
	return nil
}

// savePullQuery returns the upsert of p, keeping its place in Pulls' order.
func savePullQuery(p dtm.PullRecord) (string, []any, error) {
	if p.ID == "" {
		return "", nil, dtm.Errorf(dtm.EInvalid, "pull needs an id")
	}
	args, err := pullArgs(p)
	if err != nil {
		return "", nil, err
	}
	return `INSERT INTO target_pulls (` + pullCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT (id) DO UPDATE SET source = excluded.source, practice = excluded.practice,
			status = excluded.status, since_us = excluded.since_us, status_url = excluded.status_url,
			manifest = excluded.manifest, transaction_us = excluded.transaction_us,
			src_last_updated_us = excluded.src_last_updated_us, src_watermark_us = excluded.src_watermark_us,
			src_freshness = excluded.src_freshness, src_lag_us = excluded.src_lag_us,
			started_us = excluded.started_us, available_us = excluded.available_us,
			finished_us = excluded.finished_us, counts = excluded.counts, error = excluded.error`, args, nil
}

// CompletePull saves p as complete and advances the checkpoint of
// (p.Source, p.Practice) to p.TransactionTime, never backwards, in one
// transaction.
func (db *DB) CompletePull(ctx context.Context, p dtm.PullRecord) error {
	p.Status = dtm.PullComplete
	q, args, err := savePullQuery(p)
	if err != nil {
		return fmt.Errorf("complete pull: %w", err)
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO target_checkpoints (source, practice, transaction_us, pull, updated_us)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (source, practice) DO UPDATE SET transaction_us = excluded.transaction_us,
				pull = excluded.pull, updated_us = excluded.updated_us
			WHERE excluded.transaction_us >= target_checkpoints.transaction_us`,
			p.Source, p.Practice, toMicros(p.TransactionTime), p.ID, db.clock.Now().UnixMicro())
		return err
	})
	if err != nil {
		return fmt.Errorf("complete pull: %w", err)
	}
	return nil
}

// Pull returns the pull with the given id, or an ENotFound error.
func (db *DB) Pull(ctx context.Context, id string) (dtm.PullRecord, error) {
	p, err := scanPull(db.pool.QueryRow(ctx, `SELECT `+pullCols+` FROM target_pulls WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return dtm.PullRecord{}, dtm.Errorf(dtm.ENotFound, "pull not found")
	} else if err != nil {
		return dtm.PullRecord{}, fmt.Errorf("pull: %w", err)
	}
	return p, nil
}

// ActivePull returns the latest unfinished pull of (source, practice).
func (db *DB) ActivePull(ctx context.Context, source, practice string) (dtm.PullRecord, bool, error) {
	p, err := scanPull(db.pool.QueryRow(ctx, `SELECT `+pullCols+` FROM target_pulls
		WHERE source = $1 AND practice = $2 AND status IN ($3, $4, $5)
		ORDER BY started_us DESC, ord DESC LIMIT 1`,
		source, practice, dtm.PullKickedOff, dtm.PullDownloading, dtm.PullApplying))
	if errors.Is(err, pgx.ErrNoRows) {
		return dtm.PullRecord{}, false, nil
	} else if err != nil {
		return dtm.PullRecord{}, false, fmt.Errorf("active pull: %w", err)
	}
	return p, true, nil
}

// Pulls returns up to limit pulls of the practice, newest first.
func (db *DB) Pulls(ctx context.Context, practice string, limit int) ([]dtm.PullRecord, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+pullCols+` FROM target_pulls WHERE practice = $1
		ORDER BY started_us DESC, ord DESC LIMIT $2`, practice, limit)
	if err != nil {
		return nil, fmt.Errorf("pulls: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (dtm.PullRecord, error) { return scanPull(row) })
	if err != nil {
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
	_, err = db.pool.Exec(ctx, `INSERT INTO target_files
		(pull, url, kind, type, count, path, sha256, bytes, lines, verified, applied, counts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
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
	rows, err := db.pool.Query(ctx, `SELECT pull, url, kind, type, count, path, sha256, bytes, lines,
		verified, applied, counts FROM target_files WHERE pull = $1 ORDER BY ord`, pull)
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (dtm.PullFile, error) {
		var f dtm.PullFile
		var counts string
		if err := row.Scan(&f.Pull, &f.URL, &f.Kind, &f.Type, &f.Count, &f.Path, &f.SHA256, &f.Bytes,
			&f.Lines, &f.Verified, &f.Applied, &counts); err != nil {
			return f, err
		}
		return f, json.Unmarshal([]byte(counts), &f.Counts)
	})
	if err != nil {
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
	var b pgx.Batch
	for _, q := range recs {
		b.Queue(`INSERT INTO target_quarantine
			(pull, practice, reason, type, id, version, location, json, outcome, at_us)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (pull, reason, type, id, location) DO UPDATE SET practice = excluded.practice,
				version = excluded.version, json = excluded.json, outcome = excluded.outcome, at_us = excluded.at_us`,
			q.Pull, q.Practice, q.Reason, q.Type, q.ID, q.Version, q.Where, q.JSON, q.Outcome, toMicros(q.At))
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, &b).Close() })
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// Quarantined calls fn with the practice's quarantine records (of one pull
// when pull is not ""), in the order they were first stored. Records are
// read in pages, so fn may take its time.
func (db *DB) Quarantined(ctx context.Context, practice, pull string, fn func(dtm.QuarantineRecord) error) error {
	var after int64
	for {
		rows, err := db.pool.Query(ctx, `SELECT seq, pull, practice, reason, type, id, version, location, json,
			outcome, at_us FROM target_quarantine WHERE practice = $1 AND ($2 = '' OR pull = $2) AND seq > $3
			ORDER BY seq LIMIT 500`, practice, pull, after)
		if err != nil {
			return fmt.Errorf("quarantined: %w", err)
		}
		recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (dtm.QuarantineRecord, error) {
			var q dtm.QuarantineRecord
			var at int64
			err := row.Scan(&after, &q.Pull, &q.Practice, &q.Reason, &q.Type, &q.ID, &q.Version, &q.Where,
				&q.JSON, &q.Outcome, &at)
			q.At = fromMicros(at)
			return q, err
		})
		if err != nil {
			return fmt.Errorf("quarantined: %w", err)
		}
		for _, q := range recs {
			if err := fn(q); err != nil {
				return err
			}
		}
		if len(recs) < 500 {
			return nil
		}
	}
}
