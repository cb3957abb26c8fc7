-- 0002: Bulk Data export jobs (dtm.ExportJobs), shared by every process that
-- opens the database. Times are int64 Unix microseconds (0 = none); list
-- fields are JSON arrays.

CREATE TABLE export_jobs (
	id              TEXT PRIMARY KEY,
	client          TEXT NOT NULL,
	kind            TEXT NOT NULL,
	practices       TEXT NOT NULL, -- JSON array of ODS codes
	types           TEXT NOT NULL, -- JSON array of resource types
	since_seq       BIGINT NOT NULL,
	until_seq       BIGINT NOT NULL,
	transaction_us  BIGINT NOT NULL,
	request         TEXT NOT NULL,
	lenient         BOOLEAN NOT NULL,
	status          TEXT NOT NULL,
	progress        TEXT NOT NULL,
	files           TEXT NOT NULL, -- JSON array of dtm.ExportFile
	error           TEXT NOT NULL,
	created_us      BIGINT NOT NULL,
	updated_us      BIGINT NOT NULL,
	expires_us      BIGINT NOT NULL,
	lease_holder    TEXT NOT NULL,
	lease_until_us  BIGINT NOT NULL
);
-- ClaimJob: the oldest claimable job.
CREATE INDEX export_jobs_claim ON export_jobs (status, created_us);
-- ActiveJobs: a client's running jobs.
CREATE INDEX export_jobs_client ON export_jobs (client, status);
-- DeleteExpiredJobs.
CREATE INDEX export_jobs_expires ON export_jobs (expires_us);
