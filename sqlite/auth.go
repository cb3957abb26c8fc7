package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

// This file implements dtm.AuthStore (migration 0020_auth.sql):
// postgres/auth.go is its PostgreSQL twin; keep the two in step.

var _ dtm.AuthStore = (*DB)(nil)

const clientCols = `id, name, jwks, jwks_url, practices, ingest, agreed_per_24h, agreed_by, agreed_us, created_us, disabled`

// CreateClient registers a client and returns it as stored (times at
// microsecond precision). It returns an EInvalid error for an empty id and
// an EConflict error when the id is taken.
func (db *DB) CreateClient(ctx context.Context, c dtm.Client) (dtm.Client, error) {
	if c.ID == "" {
		return dtm.Client{}, dtm.Errorf(dtm.EInvalid, "client needs an id")
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO auth_clients (`+clientCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.JWKS, c.JWKSURL, authList(c.Practices), c.Ingest, c.AgreedRetrievalsPer24h,
		c.AgreedBy, toMicros(c.AgreedAt), toMicros(c.CreatedAt), c.Disabled)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return dtm.Client{}, dtm.Errorf(dtm.EConflict, "client %s exists", c.ID)
	} else if err != nil {
		return dtm.Client{}, fmt.Errorf("create client: %w", err)
	}
	return db.clientFrom(ctx, db.w, c.ID)
}

// Client returns one client, or an ENotFound error.
func (db *DB) Client(ctx context.Context, id string) (dtm.Client, error) {
	return db.clientFrom(ctx, db.r, id)
}

func (db *DB) clientFrom(ctx context.Context, q querier, id string) (dtm.Client, error) {
	c, err := scanClient(q.QueryRowContext(ctx, `SELECT `+clientCols+` FROM auth_clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return dtm.Client{}, dtm.Errorf(dtm.ENotFound, "client %s not found", id)
	} else if err != nil {
		return dtm.Client{}, fmt.Errorf("client: %w", err)
	}
	return c, nil
}

// ListClients returns every client ordered by id.
func (db *DB) ListClients(ctx context.Context) ([]dtm.Client, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+clientCols+` FROM auth_clients ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	defer rows.Close()
	var out []dtm.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return out, nil
}

// UpdateClient replaces every field of a client but ID and CreatedAt. It
// returns an ENotFound error for an unknown client.
func (db *DB) UpdateClient(ctx context.Context, c dtm.Client) error {
	res, err := db.w.ExecContext(ctx, `UPDATE auth_clients SET name = ?, jwks = ?, jwks_url = ?, practices = ?,
		ingest = ?, agreed_per_24h = ?, agreed_by = ?, agreed_us = ?, disabled = ? WHERE id = ?`,
		c.Name, c.JWKS, c.JWKSURL, authList(c.Practices), c.Ingest, c.AgreedRetrievalsPer24h,
		c.AgreedBy, toMicros(c.AgreedAt), c.Disabled, c.ID)
	return authAffectedOne(res, err, "update client", "client "+c.ID+" not found")
}

// DeleteClient removes a client and its access tokens in one transaction;
// its audit events stay. It returns an ENotFound error for an unknown
// client.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete client: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM auth_clients WHERE id = ?`, id)
	if err := authAffectedOne(res, err, "delete client", "client "+id+" not found"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM auth_tokens WHERE client = ?`, id); err != nil {
		return fmt.Errorf("delete client tokens: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete client: %w", err)
	}
	return nil
}

func scanClient(s scanner) (dtm.Client, error) {
	var c dtm.Client
	var practices string
	var agreedUS, createdUS int64
	err := s.Scan(&c.ID, &c.Name, &c.JWKS, &c.JWKSURL, &practices, &c.Ingest, &c.AgreedRetrievalsPer24h,
		&c.AgreedBy, &agreedUS, &createdUS, &c.Disabled)
	if err != nil {
		return c, err
	}
	c.AgreedAt, c.CreatedAt = fromMicros(agreedUS), fromMicros(createdUS)
	if err := json.Unmarshal([]byte(practices), &c.Practices); err != nil {
		return c, fmt.Errorf("client %s practices: %w", c.ID, err)
	}
	return c, nil
}

// CreateToken stores an issued token (its hash). It returns an EConflict
// error when the hash is already stored.
func (db *DB) CreateToken(ctx context.Context, t dtm.AccessToken) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO auth_tokens (hash, client, scopes, practices, ingest, issued_us, expires_us, revoked_us)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, t.Hash, t.Client, authList(t.Scopes), authList(t.Practices), t.Ingest,
		toMicros(t.IssuedAt), toMicros(t.ExpiresAt), toMicros(t.RevokedAt))
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return dtm.Errorf(dtm.EConflict, "token exists")
	} else if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// Token returns the token with the given hash, or an ENotFound error.
func (db *DB) Token(ctx context.Context, hash string) (dtm.AccessToken, error) {
	var t dtm.AccessToken
	var scopes, practices string
	var issued, expires, revoked int64
	err := db.r.QueryRowContext(ctx, `SELECT hash, client, scopes, practices, ingest, issued_us, expires_us, revoked_us
		FROM auth_tokens WHERE hash = ?`, hash).Scan(&t.Hash, &t.Client, &scopes, &practices, &t.Ingest, &issued, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return t, dtm.Errorf(dtm.ENotFound, "token not found")
	} else if err != nil {
		return t, fmt.Errorf("token: %w", err)
	}
	t.IssuedAt, t.ExpiresAt, t.RevokedAt = fromMicros(issued), fromMicros(expires), fromMicros(revoked)
	if err := json.Unmarshal([]byte(scopes), &t.Scopes); err != nil {
		return t, fmt.Errorf("token scopes: %w", err)
	}
	if err := json.Unmarshal([]byte(practices), &t.Practices); err != nil {
		return t, fmt.Errorf("token practices: %w", err)
	}
	return t, nil
}

// RevokeToken marks a token revoked at time at, keeping an earlier
// revocation. It returns an ENotFound error for an unknown hash.
func (db *DB) RevokeToken(ctx context.Context, hash string, at time.Time) error {
	res, err := db.w.ExecContext(ctx, `UPDATE auth_tokens SET revoked_us = CASE WHEN revoked_us = 0 THEN ? ELSE revoked_us END
		WHERE hash = ?`, toMicros(at), hash)
	return authAffectedOne(res, err, "revoke token", "token not found")
}

// RevokeClientTokens revokes every unrevoked token of client at time at and
// returns how many.
func (db *DB) RevokeClientTokens(ctx context.Context, client string, at time.Time) (int, error) {
	res, err := db.w.ExecContext(ctx, `UPDATE auth_tokens SET revoked_us = ? WHERE client = ? AND revoked_us = 0`,
		toMicros(at), client)
	return authAffected(res, err, "revoke client tokens")
}

// DeleteExpiredTokens removes tokens that expired before t.
func (db *DB) DeleteExpiredTokens(ctx context.Context, t time.Time) (int, error) {
	res, err := db.w.ExecContext(ctx, `DELETE FROM auth_tokens WHERE expires_us < ?`, toMicros(t))
	return authAffected(res, err, "delete expired tokens")
}

// UseJTI records client's jti until expiresAt in one statement: an insert
// that replaces only an expired record. It returns an EConflict error when
// an unexpired record exists.
func (db *DB) UseJTI(ctx context.Context, client, jti string, expiresAt, now time.Time) error {
	res, err := db.w.ExecContext(ctx, `INSERT INTO auth_jtis (client, jti, expires_us) VALUES (?, ?, ?)
		ON CONFLICT (client, jti) DO UPDATE SET expires_us = excluded.expires_us WHERE auth_jtis.expires_us < ?`,
		client, jti, toMicros(expiresAt), toMicros(now))
	n, err := authAffected(res, err, "use jti")
	if err != nil {
		return err
	}
	if n == 0 {
		return dtm.Errorf(dtm.EConflict, "jti already used")
	}
	return nil
}

// DeleteExpiredJTIs forgets assertion ids that expired before t.
func (db *DB) DeleteExpiredJTIs(ctx context.Context, t time.Time) (int, error) {
	res, err := db.w.ExecContext(ctx, `DELETE FROM auth_jtis WHERE expires_us < ?`, toMicros(t))
	return authAffected(res, err, "delete expired jtis")
}

const auditCols = `seq, time_us, client, action, practice, job, outcome, detail, remote`

// Record appends e to the audit log (e.Seq is assigned).
func (db *DB) Record(ctx context.Context, e dtm.AuditEvent) error {
	if err := insertAudit(ctx, db.w, e); err != nil {
		return err
	}
	return nil
}

type authExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertAudit(ctx context.Context, x authExecer, e dtm.AuditEvent) error {
	_, err := x.ExecContext(ctx, `INSERT INTO audit_log (time_us, client, action, practice, job, outcome, detail, remote)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		toMicros(e.Time), e.Client, e.Action, e.Practice, e.Job, e.Outcome, e.Detail, e.Remote)
	if err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	return nil
}

// AuditEvents returns the events matching q in Seq order.
func (db *DB) AuditEvents(ctx context.Context, q dtm.AuditQuery) ([]dtm.AuditEvent, error) {
	where, args := []string{"seq > ?"}, []any{q.AfterSeq}
	for _, f := range []struct{ col, v string }{
		{"client", q.Client}, {"practice", q.Practice}, {"action", q.Action}, {"outcome", q.Outcome},
	} {
		if f.v != "" {
			where, args = append(where, f.col+" = ?"), append(args, f.v)
		}
	}
	if !q.Since.IsZero() {
		where, args = append(where, "time_us >= ?"), append(args, toMicros(q.Since))
	}
	if !q.Until.IsZero() {
		where, args = append(where, "time_us < ?"), append(args, toMicros(q.Until))
	}
	query := `SELECT ` + auditCols + ` FROM audit_log WHERE ` + strings.Join(where, " AND ") + ` ORDER BY seq`
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	defer rows.Close()
	var out []dtm.AuditEvent
	for rows.Next() {
		var e dtm.AuditEvent
		var us int64
		if err := rows.Scan(&e.Seq, &us, &e.Client, &e.Action, &e.Practice, &e.Job, &e.Outcome, &e.Detail, &e.Remote); err != nil {
			return nil, fmt.Errorf("audit events: %w", err)
		}
		e.Time = fromMicros(us)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	return out, nil
}

// RecordRetrieval counts and, below limit, appends a kick-off in one
// IMMEDIATE transaction, which serialises it with every other writer (other
// processes included).
func (db *DB) RecordRetrieval(ctx context.Context, e dtm.AuditEvent, limit int, since time.Time) ([]time.Time, bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("record retrieval: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT time_us FROM audit_log WHERE client = ? AND practice = ? AND action = ?
		AND outcome = ? AND time_us > ? ORDER BY time_us`,
		e.Client, e.Practice, dtm.AuditKickoff, dtm.OutcomeSuccess, toMicros(since))
	if err != nil {
		return nil, false, fmt.Errorf("record retrieval: %w", err)
	}
	var prior []time.Time
	for rows.Next() {
		var us int64
		if err := rows.Scan(&us); err != nil {
			rows.Close()
			return nil, false, fmt.Errorf("record retrieval: %w", err)
		}
		prior = append(prior, fromMicros(us))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("record retrieval: %w", err)
	}
	if len(prior) >= limit {
		return prior, false, nil
	}
	if err := insertAudit(ctx, tx, e); err != nil {
		return nil, false, err
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("record retrieval: %w", err)
	}
	return prior, true, nil
}

// authList encodes a string list as a JSON array ([] for nil).
func authList(ss []string) string {
	if ss == nil {
		return "[]"
	}
	b, _ := json.Marshal(ss)
	return string(b)
}

// affected returns the rows a statement changed, wrapping err with op.
func authAffected(res sql.Result, err error, op string) (int, error) {
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return int(n), nil
}

// affectedOne is affected for statements on one row: no row changed is an
// ENotFound error with message notFound.
func authAffectedOne(res sql.Result, err error, op, notFound string) error {
	n, err := authAffected(res, err, op)
	if err != nil {
		return err
	}
	if n == 0 {
		return dtm.Errorf(dtm.ENotFound, "%s", notFound)
	}
	return nil
}
