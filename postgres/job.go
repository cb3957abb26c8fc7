package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	_, err = db.pool.Exec(ctx, `INSERT INTO export_jobs (`+jobCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		job.ID, job.Client, job.Kind, practices, types, job.Since, job.Until, toMicros(job.TransactionTime),
		job.Request, job.Lenient, job.Status, job.Progress, files, job.Error, toMicros(job.CreatedAt),
		toMicros(job.UpdatedAt), toMicros(job.ExpiresAt), job.LeaseHolder, toMicros(job.LeaseUntil))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return dtm.ExportJob{}, dtm.Errorf(dtm.EConflict, "export job %s exists", job.ID)
	} else if err != nil {
		return dtm.ExportJob{}, fmt.Errorf("create job: %w", err)
	}
	return db.Job(ctx, job.ID)
}

// Job returns the export job with the given id, or an ENotFound error.
func (db *DB) Job(ctx context.Context, id string) (dtm.ExportJob, error) {
	job, err := db.queryJob(ctx, `SELECT `+jobCols+` FROM export_jobs WHERE id = $1`, id)
	if errors.Is(err, pgx.ErrNoRows) {
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
	tag, err := db.pool.Exec(ctx, `UPDATE export_jobs SET status = $1, progress = $2, files = $3, error = $4,
		updated_us = $5, expires_us = $6, lease_holder = $7, lease_until_us = $8 WHERE id = $9`,
		job.Status, job.Progress, string(files), job.Error, toMicros(job.UpdatedAt), toMicros(job.ExpiresAt),
		job.LeaseHolder, toMicros(job.LeaseUntil), job.ID)
	if err != nil {
		return fmt.Errorf("update job: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return dtm.Errorf(dtm.ENotFound, "export job not found")
	}
	return nil
}

// ClaimJob leases the oldest job that is accepted or in progress and whose
// lease (if any) ended before now to holder until leaseUntil, in one
// statement (FOR UPDATE SKIP LOCKED), so that two replicas never hold the
// same job. A just-claimed job that is still accepted is not claimed again
// while its lease lasts. ok is false when no job is claimable.
func (db *DB) ClaimJob(ctx context.Context, holder string, now, leaseUntil time.Time) (dtm.ExportJob, bool, error) {
	job, err := db.queryJob(ctx, `UPDATE export_jobs SET lease_holder = $1, lease_until_us = $2
		WHERE id = (SELECT id FROM export_jobs WHERE status IN ($3, $4) AND lease_until_us < $5
			ORDER BY created_us, id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+jobCols,
		holder, toMicros(leaseUntil), dtm.JobAccepted, dtm.JobRunning, toMicros(now))
	if errors.Is(err, pgx.ErrNoRows) {
		return dtm.ExportJob{}, false, nil
	} else if err != nil {
		return dtm.ExportJob{}, false, fmt.Errorf("claim job: %w", err)
	}
	return job, true, nil
}

// ActiveJobs returns how many of the client's jobs are accepted or in
// progress.
func (db *DB) ActiveJobs(ctx context.Context, client string) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM export_jobs WHERE client = $1 AND status IN ($2, $3)`,
		client, dtm.JobAccepted, dtm.JobRunning).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("active jobs: %w", err)
	}
	return n, nil
}

// DeleteExpiredJobs removes the jobs whose ExpiresAt is set and before now,
// and returns how many.
func (db *DB) DeleteExpiredJobs(ctx context.Context, now time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM export_jobs WHERE expires_us > 0 AND expires_us < $1`, toMicros(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired jobs: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// queryJob runs a query returning one job row (jobCols).
func (db *DB) queryJob(ctx context.Context, query string, args ...any) (dtm.ExportJob, error) {
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return dtm.ExportJob{}, err
	}
	return pgx.CollectExactlyOneRow(rows, scanJob)
}

// scanJob reads one export_jobs row selected with jobCols.
func scanJob(row pgx.CollectableRow) (dtm.ExportJob, error) {
	var j dtm.ExportJob
	var practices, types, files string
	var txUS, createdUS, updatedUS, expiresUS, leaseUS int64
	if err := row.Scan(&j.ID, &j.Client, &j.Kind, &practices, &types, &j.Since, &j.Until, &txUS, &j.Request,
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
