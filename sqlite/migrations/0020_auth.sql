-- 0020: authorisation (package auth): registered clients, issued access
-- tokens (SHA-256 hashes only, never the tokens), the ids (jti) of accepted
-- client assertions, and the append-only audit log. Times are int64 Unix
-- microseconds (0 = none); list fields are JSON arrays.

CREATE TABLE auth_clients (
	id             TEXT PRIMARY KEY,
	name           TEXT NOT NULL,
	jwks           TEXT NOT NULL, -- inline JWK Set, '' when jwks_url is set
	jwks_url       TEXT NOT NULL,
	practices      TEXT NOT NULL, -- JSON array of ODS codes
	ingest         INTEGER NOT NULL,
	agreed_per_24h INTEGER NOT NULL, -- 0: the default
	agreed_by      TEXT NOT NULL,
	agreed_us      INTEGER NOT NULL,
	created_us     INTEGER NOT NULL,
	disabled       INTEGER NOT NULL
);

CREATE TABLE auth_tokens (
	hash       TEXT PRIMARY KEY, -- hex SHA-256 of the token
	client     TEXT NOT NULL,
	scopes     TEXT NOT NULL, -- JSON array
	practices  TEXT NOT NULL, -- JSON array
	ingest     INTEGER NOT NULL,
	issued_us  INTEGER NOT NULL,
	expires_us INTEGER NOT NULL,
	revoked_us INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX auth_tokens_client ON auth_tokens (client);
CREATE INDEX auth_tokens_expires ON auth_tokens (expires_us);

-- One row per accepted assertion until it expires (replay protection).
CREATE TABLE auth_jtis (
	client     TEXT NOT NULL,
	jti        TEXT NOT NULL,
	expires_us INTEGER NOT NULL,
	PRIMARY KEY (client, jti)
) WITHOUT ROWID;
CREATE INDEX auth_jtis_expires ON auth_jtis (expires_us);

CREATE TABLE audit_log (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT,
	time_us  INTEGER NOT NULL,
	client   TEXT NOT NULL,
	action   TEXT NOT NULL,
	practice TEXT NOT NULL,
	job      TEXT NOT NULL,
	outcome  TEXT NOT NULL,
	detail   TEXT NOT NULL,
	remote   TEXT NOT NULL
);
-- Retrieval counting (client, practice, kick-offs in a window) and queries
-- by client.
CREATE INDEX audit_log_client ON audit_log (client, practice, action, time_us);
CREATE INDEX audit_log_time ON audit_log (time_us);
-- The audit log is append-only: the database itself refuses changes.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;
