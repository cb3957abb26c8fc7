-- 0040: cutover bookkeeping (dtm.Cutovers): migration plans, signed
-- confirmations (append-only), runbook runs with their event log, and
-- reconciliation outcomes. Times are int64 Unix microseconds (0 = none);
-- doc columns hold the domain value as JSON. No patient data.

CREATE TABLE cutover_plans (
	id         TEXT PRIMARY KEY,
	practice   TEXT NOT NULL,
	created_us INTEGER NOT NULL,
	doc        TEXT NOT NULL
);
CREATE INDEX cutover_plans_practice ON cutover_plans (practice, created_us);

CREATE TABLE cutover_confirmations (
	seq  INTEGER PRIMARY KEY,
	id   TEXT NOT NULL UNIQUE,
	plan TEXT NOT NULL,
	doc  TEXT NOT NULL
);
CREATE INDEX cutover_confirmations_plan ON cutover_confirmations (plan, seq);

-- Signed statements are evidence: the database itself refuses changes.
CREATE TRIGGER cutover_confirmations_no_update BEFORE UPDATE ON cutover_confirmations
BEGIN
	SELECT RAISE(ABORT, 'cutover_confirmations is append-only');
END;
CREATE TRIGGER cutover_confirmations_no_delete BEFORE DELETE ON cutover_confirmations
BEGIN
	SELECT RAISE(ABORT, 'cutover_confirmations is append-only');
END;

CREATE TABLE cutover_runs (
	id         TEXT PRIMARY KEY,
	plan       TEXT NOT NULL,
	started_us INTEGER NOT NULL,
	version    INTEGER NOT NULL,
	doc        TEXT NOT NULL
);
CREATE INDEX cutover_runs_plan ON cutover_runs (plan, started_us);

CREATE TABLE cutover_events (
	run TEXT NOT NULL,
	seq INTEGER NOT NULL,
	doc TEXT NOT NULL,
	PRIMARY KEY (run, seq)
) WITHOUT ROWID;

CREATE TABLE cutover_reconciles (
	seq      INTEGER PRIMARY KEY,
	practice TEXT NOT NULL,
	at_us    INTEGER NOT NULL,
	doc      TEXT NOT NULL
);
CREATE INDEX cutover_reconciles_practice ON cutover_reconciles (practice, at_us);
