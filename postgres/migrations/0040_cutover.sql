-- 0040: cutover bookkeeping (dtm.Cutovers): migration plans, signed
-- confirmations (append-only), runbook runs with their event log, and
-- reconciliation outcomes. Times are bigint Unix microseconds (0 = none);
-- doc columns hold the domain value as JSON text. No patient data. Same
-- tables as sqlite/migrations/0040_cutover.sql.

CREATE TABLE cutover_plans (
	id         text PRIMARY KEY,
	practice   text NOT NULL,
	created_us bigint NOT NULL,
	doc        text NOT NULL
);
CREATE INDEX cutover_plans_practice ON cutover_plans (practice, created_us);

CREATE TABLE cutover_confirmations (
	seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id   text NOT NULL UNIQUE,
	plan text NOT NULL,
	doc  text NOT NULL
);
CREATE INDEX cutover_confirmations_plan ON cutover_confirmations (plan, seq);

-- Signed statements are evidence: the database itself refuses changes.
CREATE FUNCTION cutover_confirmations_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'cutover_confirmations is append-only';
END
$$;
CREATE TRIGGER cutover_confirmations_no_change BEFORE UPDATE OR DELETE ON cutover_confirmations
	FOR EACH ROW EXECUTE FUNCTION cutover_confirmations_append_only();
CREATE TRIGGER cutover_confirmations_no_truncate BEFORE TRUNCATE ON cutover_confirmations
	FOR EACH STATEMENT EXECUTE FUNCTION cutover_confirmations_append_only();

CREATE TABLE cutover_runs (
	id         text PRIMARY KEY,
	plan       text NOT NULL,
	started_us bigint NOT NULL,
	version    bigint NOT NULL,
	doc        text NOT NULL
);
CREATE INDEX cutover_runs_plan ON cutover_runs (plan, started_us);

CREATE TABLE cutover_events (
	run text NOT NULL,
	seq bigint NOT NULL,
	doc text NOT NULL,
	PRIMARY KEY (run, seq)
);

CREATE TABLE cutover_reconciles (
	seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	practice text NOT NULL,
	at_us    bigint NOT NULL,
	doc      text NOT NULL
);
CREATE INDEX cutover_reconciles_practice ON cutover_reconciles (practice, at_us);
