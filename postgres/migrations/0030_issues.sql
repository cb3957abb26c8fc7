-- 0030: data issues (dtm.Issues) raised by the target with the source, and
-- their history. Times are bigint Unix microseconds (0 = none); resources is
-- a JSON array of "Type/id" kept as text. Same tables as
-- sqlite/migrations/0030_issues.sql.

CREATE TABLE data_issues (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	practice       text NOT NULL,
	key            text NOT NULL,
	status         text NOT NULL,
	severity       text NOT NULL,
	category       text NOT NULL,
	rule           text NOT NULL,
	title          text NOT NULL,
	text           text NOT NULL,
	resources      text NOT NULL,
	resource_count integer NOT NULL,
	outcome        bytea,
	raised_by      text NOT NULL,
	raised_us      bigint NOT NULL,
	updated_us     bigint NOT NULL,
	awaiting_us    bigint NOT NULL,
	responded_us   bigint NOT NULL,
	closed_us      bigint NOT NULL
);
CREATE INDEX data_issues_practice ON data_issues (practice, status, id);
-- Deduplication: one issue per key among a practice's issues not closed.
CREATE UNIQUE INDEX data_issues_active_key ON data_issues (practice, key)
	WHERE key <> '' AND status <> 'closed';

CREATE TABLE data_issue_events (
	issue       bigint NOT NULL REFERENCES data_issues (id),
	seq         integer NOT NULL,
	at_us       bigint NOT NULL,
	actor       text NOT NULL,
	action      text NOT NULL,
	from_status text NOT NULL,
	to_status   text NOT NULL,
	text        text NOT NULL,
	PRIMARY KEY (issue, seq)
);
