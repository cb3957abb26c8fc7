-- 0020: authorisation (package auth): registered clients, issued access
-- tokens (SHA-256 hashes only, never the tokens), the ids (jti) of accepted
-- client assertions, and the append-only audit log. Times are bigint Unix
-- microseconds (0 = none). Same tables as sqlite/migrations/0020_auth.sql.

CREATE TABLE auth_clients (
	id             text PRIMARY KEY,
	name           text NOT NULL,
	jwks           text NOT NULL, -- inline JWK Set, '' when jwks_url is set
	jwks_url       text NOT NULL,
	practices      text[] NOT NULL,
	ingest         boolean NOT NULL,
	agreed_per_24h integer NOT NULL, -- 0: the default
	agreed_by      text NOT NULL,
	agreed_us      bigint NOT NULL,
	created_us     bigint NOT NULL,
	disabled       boolean NOT NULL
);

CREATE TABLE auth_tokens (
	hash       text PRIMARY KEY, -- hex SHA-256 of the token
	client     text NOT NULL,
	scopes     text[] NOT NULL,
	practices  text[] NOT NULL,
	ingest     boolean NOT NULL,
	issued_us  bigint NOT NULL,
	expires_us bigint NOT NULL,
	revoked_us bigint NOT NULL DEFAULT 0
);
CREATE INDEX auth_tokens_client ON auth_tokens (client);
CREATE INDEX auth_tokens_expires ON auth_tokens (expires_us);

-- One row per accepted assertion until it expires (replay protection).
CREATE TABLE auth_jtis (
	client     text NOT NULL,
	jti        text NOT NULL,
	expires_us bigint NOT NULL,
	PRIMARY KEY (client, jti)
);
CREATE INDEX auth_jtis_expires ON auth_jtis (expires_us);

CREATE TABLE audit_log (
	seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time_us  bigint NOT NULL,
	client   text NOT NULL,
	action   text NOT NULL,
	practice text NOT NULL,
	job      text NOT NULL,
	outcome  text NOT NULL,
	detail   text NOT NULL,
	remote   text NOT NULL
);
CREATE INDEX audit_log_client ON audit_log (client, practice, action, time_us);
CREATE INDEX audit_log_time ON audit_log (time_us);

-- The audit log is append-only: the database itself refuses changes.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
