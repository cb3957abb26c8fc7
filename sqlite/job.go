package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

var _ dtm.ExportJobs = (*DB)(nil)

const jobCols = `id, client, kind, practices, types, since_seq, until_seq, transaction_us, request,
	lenient, status, progress, files, error, created_us, updated_us, expires_us, lease_holder, lease_until_us`

// CreateJob stores a new export job and returns it as stored (times at
// microsecond precision). It returns an EInvalid error for a job without
// an id and an EConflict error when the id is taken.
func (db *DB) CreateJob(ctx context.Context, job dtm.ExportJob) (dtm.ExportJob, error) {
	if job.ID == "" {
		return dtm.ExportJob{}, dtm.Errorf(dtm.EInvalid, "export job needs an id")
	}
	practices, types, files, err := jobLists(job)
	if err != nil {
		return dtm.ExportJob{}, fmt.Errorf("create job: %w", err)
	}
	_, err = db.w.ExecContext(ctx, `INSERT INTO export_jobs (`+jobCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		job.ID, job.Client, job.Kind, practices, types, job.Since, job.Until, toMicros(job.TransactionTime),
		job.Request, job.Lenient, job.Status, job.Progress, files, job.Error, toMicros(job.CreatedAt),
		toMicros(job.UpdatedAt), toMicros(job.ExpiresAt), job.LeaseHolder, toMicros(job.LeaseUntil))
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return dtm.ExportJob{}, dtm.Errorf(dtm.EConflict, "export job %s exists", job.ID)
	} else if err != nil {
		return dtm.ExportJob{}, fmt.Errorf("create job: %w", err)
	}
	return db.Job(ctx, job.ID)
}

// Job returns the export job with the given id, or an ENotFound error.
func (db *DB) Job(ctx context.Context, id string) (dtm.ExportJob, error) {
	job, err := scanJob(db.r.QueryRowContext(ctx, `SELECT `+jobCols+` FROM export_jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return dtm.ExportJob{}, dtm.Errorf(dtm.ENotFound, "export job not found")
	} else if err != nil {
		return dtm.ExportJob{}, fmt.Errorf("job: %w", err)
	}
	return job, nil
}

// UpdateJob replaces the job's mutable fields (Status, Progress, Files,
// Error, UpdatedAt, ExpiresAt, LeaseHolder, LeaseUntil). It returns an
// ENotFound error for an unknown job.
func (db *DB) UpdateJob(ctx context.Context, job dtm.ExportJob) error {
	files, err := json.Marshal(nonNil(job.Files))
	if err != nil {
		return fmt.Errorf("update job: %w", err)
	}
	res, err := db.w.ExecContext(ctx, `UPDATE export_jobs SET status = ?, progress = ?, files = ?, error = ?,
		updated_us = ?, expires_us = ?, lease_holder = ?, lease_until_us = ? WHERE id = ?`,
		job.Status, job.Progress, string(files), job.Error, toMicros(job.UpdatedAt), toMicros(job.ExpiresAt),
		job.LeaseHolder, toMicros(job.LeaseUntil), job.ID)
	if err != nil {
		return fmt.Errorf("update job: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update job: %w", err)
	} else if n == 0 {
		return dtm.Errorf(dtm.ENotFound, "export job not found")
	}
	return nil
}

// ClaimJob leases the oldest job that is accepted or in progress and whose
// lease (if any) ended before now to holder until leaseUntil, in one
// IMMEDIATE transaction, so that two workers never hold the same job. A
// just-claimed job that is still accepted is not claimed again while its
// lease lasts. ok is false when no job is claimable.
func (db *DB) ClaimJob(ctx context.Context, holder string, now, leaseUntil time.Time) (dtm.ExportJob, bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return dtm.ExportJob{}, false, fmt.Errorf("claim job: %w", err)
	}
	defer tx.Rollback()
	job, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobCols+` FROM export_jobs
		WHERE status IN (?, ?) AND lease_until_us < ? ORDER BY created_us, id LIMIT 1`,
		dtm.JobAccepted, dtm.JobRunning, toMicros(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return dtm.ExportJob{}, false, nil
	} else if err != nil {
		return dtm.ExportJob{}, false, fmt.Errorf("claim job: %w", err)
	}
	job.LeaseHolder, job.LeaseUntil = holder, fromMicros(toMicros(leaseUntil))
	if _, err := tx.ExecContext(ctx, `UPDATE export_jobs SET lease_holder = ?, lease_until_us = ? WHERE id = ?`,
		holder, toMicros(leaseUntil), job.ID); err != nil {
		return dtm.ExportJob{}, false, fmt.Errorf("claim job: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return dtm.ExportJob{}, false, fmt.Errorf("claim job: %w", err)
	}
	return job, true, nil
}

// ActiveJobs returns how many of the client's jobs are accepted or in
// progress.
func (db *DB) ActiveJobs(ctx context.Context, client string) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM export_jobs WHERE client = ? AND status IN (?, ?)`,
		client, dtm.JobAccepted, dtm.JobRunning).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("active jobs: %w", err)
	}
	return n, nil
}

// DeleteExpiredJobs removes the jobs whose ExpiresAt is set and before now,
// and returns how many.
func (db *DB) DeleteExpiredJobs(ctx context.Context, now time.Time) (int, error) {
	res, err := db.w.ExecContext(ctx, `DELETE FROM export_jobs WHERE expires_us > 0 AND expires_us < ?`, toMicros(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired jobs: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired jobs: %w", err)
	}
	return int(n), nil
}

// scanJob reads one export_jobs row selected with jobCols.
func scanJob(s scanner) (dtm.ExportJob, error) {
	var j dtm.ExportJob
	var practices, types, files string
	var txUS, createdUS, updatedUS, expiresUS, leaseUS int64
	if err := s.Scan(&j.ID, &j.Client, &j.Kind, &practices, &types, &j.Since, &j.Until, &txUS, &j.Request,
		&j.Lenient, &j.Status, &j.Progress, &files, &j.Error, &createdUS, &updatedUS, &expiresUS,
		&j.LeaseHolder, &leaseUS); err != nil {
		return dtm.ExportJob{}, err
	}
	for _, f := range []struct {
		src string
		dst any
	}{{practices, &j.Practices}, {types, &j.Types}, {files, &j.Files}} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return dtm.ExportJob{}, fmt.Errorf("decode job %s: %w", j.ID, err)
		}
	}
	j.TransactionTime, j.CreatedAt, j.UpdatedAt = fromMicros(txUS), fromMicros(createdUS), fromMicros(updatedUS)
	j.ExpiresAt, j.LeaseUntil = fromMicros(expiresUS), fromMicros(leaseUS)
	return j, nil
}

// jobLists encodes a job's list fields as JSON arrays ("[]" for nil).
func jobLists(job dtm.ExportJob) (practices, types, files string, err error) {
	var out [3][]byte
	for i, v := range []any{nonNil(job.Practices), nonNil(job.Types), nonNil(job.Files)} {
		if out[i], err = json.Marshal(v); err != nil {
			return "", "", "", err
		}
	}
	return string(out[0]), string(out[1]), string(out[2]), nil
}

// nonNil returns s, or an empty slice for nil, so that it encodes as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
