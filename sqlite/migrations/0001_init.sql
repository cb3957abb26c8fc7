-- 0001: practices and the versioned change journal.
--
-- Times are int64 Unix microseconds (0 = never). The journal is append-only:
-- a resource's current state is its row with the highest seq, found with one
-- seek in journal_key.

CREATE TABLE practices (
	ods             TEXT PRIMARY KEY,
	name            TEXT NOT NULL,
	created_us      INTEGER NOT NULL,
	watermark_us    INTEGER NOT NULL DEFAULT 0,
	last_updated_us INTEGER NOT NULL DEFAULT 0,
	frozen          INTEGER NOT NULL DEFAULT 0
);

-- head is the latest committed snapshot. Every Apply locks it (BEGIN
-- IMMEDIATE), so commits are serialised and seq order is commit order.
CREATE TABLE head (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	seq     INTEGER NOT NULL,
	time_us INTEGER NOT NULL
);
INSERT INTO head (id, seq, time_us) VALUES (1, 0, 0);

-- commits maps commit times to the last seq of each batch (SnapshotAt).
-- Commit times strictly increase, so time_us is unique.
CREATE TABLE commits (
	time_us INTEGER PRIMARY KEY,
	seq     INTEGER NOT NULL
);

CREATE TABLE journal (
	seq       INTEGER PRIMARY KEY,
	practice  TEXT NOT NULL,
	type      TEXT NOT NULL,
	id        TEXT NOT NULL,
	version   INTEGER NOT NULL,
	op        INTEGER NOT NULL, -- 0 upsert, 1 delete
	commit_us INTEGER NOT NULL,
	patient   TEXT NOT NULL DEFAULT '',
	member    INTEGER NOT NULL DEFAULT 0,
	hash      TEXT NOT NULL DEFAULT '',
	json      BLOB -- exact bytes; NULL for deletes
);
-- Changes for one type, in seq order.
CREATE INDEX journal_type ON journal (practice, type, seq);
-- One resource's history: current state, State, and "no later change".
CREATE UNIQUE INDEX journal_key ON journal (practice, type, id, seq);
-- Patient compartments.
CREATE INDEX journal_patient ON journal (practice, patient, seq) WHERE patient <> '';

-- counts holds the live resources per type at head, maintained by Apply.
CREATE TABLE counts (
	practice TEXT NOT NULL,
	type     TEXT NOT NULL,
	live     INTEGER NOT NULL,
	PRIMARY KEY (practice, type)
) WITHOUT ROWID;
