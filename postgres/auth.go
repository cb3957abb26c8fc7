package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// This file implements dtm.AuthStore (migration 0020_auth.sql): the
// PostgreSQL twin of sqlite/auth.go; keep the two in step.

var _ dtm.AuthStore = (*DB)(nil)

const clientCols = `id, name, jwks, jwks_url, practices, ingest, agreed_per_24h, agreed_by, agreed_us, created_us, disabled`

// authIsUnique reports whether err is a unique-constraint violation.
func authIsUnique(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// authStrs returns ss, or an empty slice for nil (text[] columns are NOT NULL).
func authStrs(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// CreateClient registers a client and returns it as stored (times at
// microsecond precision). It returns an EInvalid error for an empty id and
// an EConflict error when the id is taken.
func (db *DB) CreateClient(ctx context.Context, c dtm.Client) (dtm.Client, error) {
	if c.ID == "" {
		return dtm.Client{}, dtm.Errorf(dtm.EInvalid, "client needs an id")
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO auth_clients (`+clientCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		c.ID, c.Name, c.JWKS, c.JWKSURL, authStrs(c.Practices), c.Ingest, c.AgreedRetrievalsPer24h,
		c.AgreedBy, toMicros(c.AgreedAt), toMicros(c.CreatedAt), c.Disabled)
	if authIsUnique(err) {
		return dtm.Client{}, dtm.Errorf(dtm.EConflict, "client %s exists", c.ID)
	} else if err != nil {
		return dtm.Client{}, fmt.Errorf("create client: %w", err)
	}
	return db.Client(ctx, c.ID)
}

// Client returns one client, or an ENotFound error.
func (db *DB) Client(ctx context.Context, id string) (dtm.Client, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+clientCols+` FROM auth_clients WHERE id = $1`, id)
	if err != nil {
		return dtm.Client{}, fmt.Errorf("client: %w", err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanClient)
	if errors.Is(err, pgx.ErrNoRows) {
		return dtm.Client{}, dtm.Errorf(dtm.ENotFound, "client %s not found", id)
	} else if err != nil {
		return dtm.Client{}, fmt.Errorf("client: %w", err)
	}
	return c, nil
}

// ListClients returns every client ordered by id.
func (db *DB) ListClients(ctx context.Context) ([]dtm.Client, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+clientCols+` FROM auth_clients ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanClient)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return out, nil
}

func scanClient(row pgx.CollectableRow) (dtm.Client, error) {
	var c dtm.Client
	var agreed, created int64
	err := row.Scan(&c.ID, &c.Name, &c.JWKS, &c.JWKSURL, &c.Practices, &c.Ingest, &c.AgreedRetrievalsPer24h,
		&c.AgreedBy, &agreed, &created, &c.Disabled)
	c.AgreedAt, c.CreatedAt = fromMicros(agreed), fromMicros(created)
	return c, err
}

// UpdateClient replaces every field of a client but ID and CreatedAt. It
// returns an ENotFound error for an unknown client.
func (db *DB) UpdateClient(ctx context.Context, c dtm.Client) error {
	tag, err := db.pool.Exec(ctx, `UPDATE auth_clients SET name = $1, jwks = $2, jwks_url = $3, practices = $4,
		ingest = $5, agreed_per_24h = $6, agreed_by = $7, agreed_us = $8, disabled = $9 WHERE id = $10`,
		c.Name, c.JWKS, c.JWKSURL, authStrs(c.Practices), c.Ingest, c.AgreedRetrievalsPer24h,
		c.AgreedBy, toMicros(c.AgreedAt), c.Disabled, c.ID)
	return authOneRow(tag, err, "update client", "client "+c.ID+" not found")
}

// DeleteClient removes a client and its access tokens in one transaction;
// its audit events stay. It returns an ENotFound error for an unknown
// client.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM auth_clients WHERE id = $1`, id)
		if err := authOneRow(tag, err, "delete client", "client "+id+" not found"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM auth_tokens WHERE client = $1`, id); err != nil {
			return fmt.Errorf("delete client tokens: %w", err)
		}
		return nil
	})
}

// CreateToken stores an issued token (its hash). It returns an EConflict
// error when the hash is already stored.
func (db *DB) CreateToken(ctx context.Context, t dtm.AccessToken) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO auth_tokens (hash, client, scopes, practices, ingest, issued_us, expires_us, revoked_us)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, t.Hash, t.Client, authStrs(t.Scopes), authStrs(t.Practices), t.Ingest,
		toMicros(t.IssuedAt), toMicros(t.ExpiresAt), toMicros(t.RevokedAt))
	if authIsUnique(err) {
		return dtm.Errorf(dtm.EConflict, "token exists")
	} else if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// Token returns the token with the given hash, or an ENotFound error.
func (db *DB) Token(ctx context.Context, hash string) (dtm.AccessToken, error) {
	var t dtm.AccessToken
	var issued, expires, revoked int64
	err := db.pool.QueryRow(ctx, `SELECT hash, client, scopes, practices, ingest, issued_us, expires_us, revoked_us
		FROM auth_tokens WHERE hash = $1`, hash).Scan(&t.Hash, &t.Client, &t.Scopes, &t.Practices, &t.Ingest, &issued, &expires, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, dtm.Errorf(dtm.ENotFound, "token not found")
	} else if err != nil {
		return t, fmt.Errorf("token: %w", err)
	}
	t.IssuedAt, t.ExpiresAt, t.RevokedAt = fromMicros(issued), fromMicros(expires), fromMicros(revoked)
	return t, nil
}

// RevokeToken marks a token revoked at time at, keeping an earlier
// revocation. It returns an ENotFound error for an unknown hash.
func (db *DB) RevokeToken(ctx context.Context, hash string, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE auth_tokens SET revoked_us = CASE WHEN revoked_us = 0 THEN $1 ELSE revoked_us END
		WHERE hash = $2`, toMicros(at), hash)
	return authOneRow(tag, err, "revoke token", "token not found")
}

// RevokeClientTokens revokes every unrevoked token of client at time at and
// returns how many.
func (db *DB) RevokeClientTokens(ctx context.Context, client string, at time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE auth_tokens SET revoked_us = $1 WHERE client = $2 AND revoked_us = 0`,
		toMicros(at), client)
	if err != nil {
		return 0, fmt.Errorf("revoke client tokens: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// DeleteExpiredTokens removes tokens that expired before t.
func (db *DB) DeleteExpiredTokens(ctx context.Context, t time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM auth_tokens WHERE expires_us < $1`, toMicros(t))
	if err != nil {
		return 0, fmt.Errorf("delete expired tokens: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// UseJTI records client's jti until expiresAt in one statement: an insert
// that replaces only an expired record (concurrent inserts of one pair are
// resolved by the primary key). It returns an EConflict error when an
// unexpired record exists.
func (db *DB) UseJTI(ctx context.Context, client, jti string, expiresAt, now time.Time) error {
	tag, err := db.pool.Exec(ctx, `INSERT INTO auth_jtis (client, jti, expires_us) VALUES ($1, $2, $3)
		ON CONFLICT (client, jti) DO UPDATE SET expires_us = EXCLUDED.expires_us WHERE auth_jtis.expires_us < $4`,
		client, jti, toMicros(expiresAt), toMicros(now))
	if err != nil {
		return fmt.Errorf("use jti: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return dtm.Errorf(dtm.EConflict, "jti already used")
	}
	return nil
}

// DeleteExpiredJTIs forgets assertion ids that expired before t.
func (db *DB) DeleteExpiredJTIs(ctx context.Context, t time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM auth_jtis WHERE expires_us < $1`, toMicros(t))
	if err != nil {
		return 0, fmt.Errorf("delete expired jtis: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

const auditCols = `seq, time_us, client, action, practice, job, outcome, detail, remote`

// auditExecer is a pool or a transaction.
type auditExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Record appends e to the audit log (e.Seq is assigned).
func (db *DB) Record(ctx context.Context, e dtm.AuditEvent) error {
	return insertAudit(ctx, db.pool, e)
}

func insertAudit(ctx context.Context, x auditExecer, e dtm.AuditEvent) error {
	_, err := x.Exec(ctx, `INSERT INTO audit_log (time_us, client, action, practice, job, outcome, detail, remote)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		toMicros(e.Time), e.Client, e.Action, e.Practice, e.Job, e.Outcome, e.Detail, e.Remote)
	if err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	return nil
}

// AuditEvents returns the events matching q in Seq order.
func (db *DB) AuditEvents(ctx context.Context, q dtm.AuditQuery) ([]dtm.AuditEvent, error) {
	where, args := []string{"seq > $1"}, []any{q.AfterSeq}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	for _, f := range []struct{ col, v string }{
		{"client", q.Client}, {"practice", q.Practice}, {"action", q.Action}, {"outcome", q.Outcome},
	} {
		if f.v != "" {
			add(f.col+" = $%d", f.v)
		}
	}
	if !q.Since.IsZero() {
		add("time_us >= $%d", toMicros(q.Since))
	}
	if !q.Until.IsZero() {
		add("time_us < $%d", toMicros(q.Until))
	}
	query := `SELECT ` + auditCols + ` FROM audit_log WHERE ` + strings.Join(where, " AND ") + ` ORDER BY seq`
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (dtm.AuditEvent, error) {
		var e dtm.AuditEvent
		var us int64
		err := row.Scan(&e.Seq, &us, &e.Client, &e.Action, &e.Practice, &e.Job, &e.Outcome, &e.Detail, &e.Remote)
		e.Time = fromMicros(us)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	return out, nil
}

// RecordRetrieval counts and, below limit, appends a kick-off in one
// transaction holding an advisory lock on (client, practice), so that
// concurrent kick-offs on any replica are counted one after another.
func (db *DB) RecordRetrieval(ctx context.Context, e dtm.AuditEvent, limit int, since time.Time) ([]time.Time, bool, error) {
	var prior []time.Time
	recorded := false
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		prior, recorded = nil, false
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
			"dtm-retrieval/"+e.Client+"/"+e.Practice); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT time_us FROM audit_log WHERE client = $1 AND practice = $2 AND action = $3
			AND outcome = $4 AND time_us > $5 ORDER BY time_us`,
			e.Client, e.Practice, dtm.AuditKickoff, dtm.OutcomeSuccess, toMicros(since))
		if err != nil {
			return err
		}
		us, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, u := range us {
			prior = append(prior, fromMicros(u))
		}
		if len(prior) >= limit {
			return nil
		}
		if err := insertAudit(ctx, tx, e); err != nil {
			return err
		}
		recorded = true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("record retrieval: %w", err)
	}
	return prior, recorded, nil
}

// authOneRow checks a statement on one row: no row changed is an ENotFound
// error with message notFound.
func authOneRow(tag pgconn.CommandTag, err error, op, notFound string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if tag.RowsAffected() == 0 {
		return dtm.Errorf(dtm.ENotFound, "%s", notFound)
	}
	return nil
}
