-- 0030: data issues (dtm.Issues) raised by the target with the source, and
-- their history. Times are int64 Unix microseconds (0 = none); resources is a
-- JSON array of "Type/id". Same tables as postgres/migrations/0030_issues.sql.

CREATE TABLE data_issues (
	id             INTEGER PRIMARY KEY,
	practice       TEXT NOT NULL,
	key            TEXT NOT NULL,
	status         TEXT NOT NULL,
	severity       TEXT NOT NULL,
	category       TEXT NOT NULL,
	rule           TEXT NOT NULL,
	title          TEXT NOT NULL,
	text           TEXT NOT NULL,
	resources      TEXT NOT NULL,
	resource_count INTEGER NOT NULL,
	outcome        BLOB,
	raised_by      TEXT NOT NULL,
	raised_us      INTEGER NOT NULL,
	updated_us     INTEGER NOT NULL,
	awaiting_us    INTEGER NOT NULL,
	responded_us   INTEGER NOT NULL,
	closed_us      INTEGER NOT NULL
);
CREATE INDEX data_issues_practice ON data_issues (practice, status, id);
-- Deduplication: one issue per key among a practice's issues not closed.
CREATE UNIQUE INDEX data_issues_active_key ON data_issues (practice, key)
	WHERE key <> '' AND status <> 'closed';

CREATE TABLE data_issue_events (
	issue  INTEGER NOT NULL REFERENCES data_issues (id),
	seq    INTEGER NOT NULL,
	at_us  INTEGER NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	from_status TEXT NOT NULL,
	to_status   TEXT NOT NULL,
	text   TEXT NOT NULL,
	PRIMARY KEY (issue, seq)
) WITHOUT ROWID;
