-- 0001: practices and the versioned change journal.
--
-- Times are bigint Unix microseconds (0 = never). Text keys use the "C"
-- collation: byte order, the same as SQLite, and cheaper comparisons.
-- Resource JSON is bytea, not jsonb: jsonb reorders keys and normalises
-- numbers (5.60 -> 5.6), which would break fidelity (DESIGN.md invariant 6).

CREATE TABLE practices (
	ods             text COLLATE "C" PRIMARY KEY,
	name            text NOT NULL,
	created_us      bigint NOT NULL,
	watermark_us    bigint NOT NULL DEFAULT 0,
	last_updated_us bigint NOT NULL DEFAULT 0,
	frozen          boolean NOT NULL DEFAULT false
);

-- head is the latest committed snapshot. Every Apply locks its row (SELECT
-- ... FOR UPDATE) first, so commits are serialised and seq order is commit
-- order.
CREATE TABLE head (
	id      integer PRIMARY KEY CHECK (id = 1),
	seq     bigint NOT NULL,
	time_us bigint NOT NULL
);
INSERT INTO head (id, seq, time_us) VALUES (1, 0, 0);

-- commits maps commit times to the last seq of each batch (SnapshotAt).
CREATE TABLE commits (
	time_us bigint PRIMARY KEY,
	seq     bigint NOT NULL
);

CREATE TABLE journal (
	seq       bigint PRIMARY KEY,
	practice  text COLLATE "C" NOT NULL,
	type      text COLLATE "C" NOT NULL,
	id        text COLLATE "C" NOT NULL,
	version   bigint NOT NULL,
	op        smallint NOT NULL, -- 0 upsert, 1 delete
	commit_us bigint NOT NULL,
	patient   text COLLATE "C" NOT NULL DEFAULT '',
	member    boolean NOT NULL DEFAULT false,
	hash      text NOT NULL DEFAULT '',
	json      bytea -- exact bytes; NULL for deletes
);
CREATE INDEX journal_type ON journal (practice, type, seq);
CREATE UNIQUE INDEX journal_key ON journal (practice, type, id, seq);
CREATE INDEX journal_patient ON journal (practice, patient, seq) WHERE patient <> '';

-- counts holds the live resources per type at head, maintained by Apply.
CREATE TABLE counts (
	practice text COLLATE "C" NOT NULL,
	type     text COLLATE "C" NOT NULL,
	live     bigint NOT NULL,
	PRIMARY KEY (practice, type)
);
