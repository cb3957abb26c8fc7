-- 0010: target role bookkeeping (dtm.TargetState): checkpoints, pulls, the
-- files of each pull, and quarantine. Times are int64 Unix microseconds
-- (0 = none); counts are JSON objects of dtm.PullCounts.

-- The _since of the next export per (source, practice): advanced only with
-- a pull's completion, in one transaction (invariant 4).
CREATE TABLE target_checkpoints (
	source         TEXT NOT NULL,
	practice       TEXT NOT NULL,
	transaction_us INTEGER NOT NULL,
	pull           TEXT NOT NULL,
	updated_us     INTEGER NOT NULL,
	PRIMARY KEY (source, practice)
) WITHOUT ROWID;

CREATE TABLE target_pulls (
	id                  TEXT PRIMARY KEY,
	source              TEXT NOT NULL,
	practice            TEXT NOT NULL,
	status              TEXT NOT NULL,
	since_us            INTEGER NOT NULL,
	status_url          TEXT NOT NULL,
	manifest            BLOB,
	transaction_us      INTEGER NOT NULL,
	src_last_updated_us INTEGER NOT NULL,
	src_watermark_us    INTEGER NOT NULL,
	src_freshness       TEXT NOT NULL,
	src_lag_us          INTEGER NOT NULL,
	started_us          INTEGER NOT NULL,
	available_us        INTEGER NOT NULL,
	finished_us         INTEGER NOT NULL,
	counts              TEXT NOT NULL,
	error               TEXT NOT NULL
);
CREATE INDEX target_pulls_practice ON target_pulls (practice, started_us);
CREATE INDEX target_pulls_active ON target_pulls (source, practice, status);

CREATE TABLE target_files (
	pull     TEXT NOT NULL,
	url      TEXT NOT NULL,
	kind     TEXT NOT NULL,
	type     TEXT NOT NULL,
	count    INTEGER NOT NULL,
	path     TEXT NOT NULL,
	sha256   TEXT NOT NULL,
	bytes    INTEGER NOT NULL,
	lines    INTEGER NOT NULL,
	verified INTEGER NOT NULL,
	applied  INTEGER NOT NULL,
	counts   TEXT NOT NULL,
	PRIMARY KEY (pull, url)
);

CREATE TABLE target_quarantine (
	seq      INTEGER PRIMARY KEY,
	pull     TEXT NOT NULL,
	practice TEXT NOT NULL,
	reason   TEXT NOT NULL,
	type     TEXT NOT NULL,
	id       TEXT NOT NULL,
	version  INTEGER NOT NULL,
	location TEXT NOT NULL,
	json     BLOB,
	outcome  BLOB,
	at_us    INTEGER NOT NULL,
	UNIQUE (pull, reason, type, id, location)
);
CREATE INDEX target_quarantine_practice ON target_quarantine (practice, seq);
