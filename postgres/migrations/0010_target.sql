-- 0010: target role bookkeeping (dtm.TargetState): checkpoints, pulls, the
-- files of each pull, and quarantine. Times are int64 Unix microseconds
-- (0 = none); counts are JSON objects of dtm.PullCounts. Same schema as
-- sqlite/migrations/0010_target.sql.

-- The _since of the next export per (source, practice): advanced only with
-- a pull's completion, in one transaction (invariant 4).
CREATE TABLE target_checkpoints (
	source         text NOT NULL,
	practice       text NOT NULL,
	transaction_us bigint NOT NULL,
	pull           text NOT NULL,
	updated_us     bigint NOT NULL,
	PRIMARY KEY (source, practice)
);

CREATE TABLE target_pulls (
	id                  text PRIMARY KEY,
	source              text NOT NULL,
	practice            text NOT NULL,
	status              text NOT NULL,
	since_us            bigint NOT NULL,
	status_url          text NOT NULL,
	manifest            bytea,
	transaction_us      bigint NOT NULL,
	src_last_updated_us bigint NOT NULL,
	src_watermark_us    bigint NOT NULL,
	src_freshness       text NOT NULL,
	src_lag_us          bigint NOT NULL,
	started_us          bigint NOT NULL,
	available_us        bigint NOT NULL,
	finished_us         bigint NOT NULL,
	counts              text NOT NULL,
	error               text NOT NULL,
	ord                 bigserial NOT NULL -- order of first save
);
CREATE INDEX target_pulls_practice ON target_pulls (practice, started_us);
CREATE INDEX target_pulls_active ON target_pulls (source, practice, status);

CREATE TABLE target_files (
	pull     text NOT NULL,
	url      text NOT NULL,
	kind     text NOT NULL,
	type     text NOT NULL,
	count    bigint NOT NULL,
	path     text NOT NULL,
	sha256   text NOT NULL,
	bytes    bigint NOT NULL,
	lines    bigint NOT NULL,
	verified boolean NOT NULL,
	applied  boolean NOT NULL,
	counts   text NOT NULL,
	ord      bigserial NOT NULL, -- order of first save
	PRIMARY KEY (pull, url)
);

CREATE TABLE target_quarantine (
	seq      bigserial PRIMARY KEY,
	pull     text NOT NULL,
	practice text NOT NULL,
	reason   text NOT NULL,
	type     text NOT NULL,
	id       text NOT NULL,
	version  bigint NOT NULL,
	location text NOT NULL,
	json     bytea,
	outcome  bytea,
	at_us    bigint NOT NULL,
	UNIQUE (pull, reason, type, id, location)
);
CREATE INDEX target_quarantine_practice ON target_quarantine (practice, seq);
