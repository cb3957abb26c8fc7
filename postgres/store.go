// Package postgres implements dtm.Store on PostgreSQL (pgx/v5), for
// deployments that outgrow one machine: several stateless `dtm source serve`
// replicas can share one database.
//
// Commits are serialised store-wide: every Apply first locks the single row
// of table head (SELECT ... FOR UPDATE), takes the next seqs and a commit
// time from it, and updates it in the same transaction. Sequence order is
// therefore commit order, and a Head read never misses a commit that becomes
// visible later with a lower seq — which a plain sequence could not promise
// on PostgreSQL (see docs/ARCHITECTURE.md, "Store").
//
// Resource JSON is stored as bytea, byte for byte; jsonb would reorder keys
// and normalise numbers. The schema is created and upgraded by Open from the
// numbered migrations embedded in the binary (migrations/NNNN_name.sql).
package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/jackc/pgx/v5/pgxpool"
)

var _ dtm.Store = (*DB)(nil)

// Options configures Open. The zero value is usable.
type Options struct {
	// Clock stamps commit times; dtm.SystemClock{} when nil.
	Clock dtm.Clock
	// Logger receives operational messages (never patient data);
	// slog.Default() when nil.
	Logger *slog.Logger
}

// DB is a dtm.Store backed by a PostgreSQL database. It is safe for
// concurrent use; the caller that opened it closes it.
type DB struct {
	pool   *pgxpool.Pool
	clock  dtm.Clock
	logger *slog.Logger

	closeOnce sync.Once
}

// Open connects to the database at url (postgres://… or postgresql://…; the
// pgxpool parameters such as pool_max_conns are accepted) and brings its
// schema up to date. It returns an error if the server cannot be reached,
// the schema is newer than this binary, or a migration fails. The caller
// must Close the DB.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db := &DB{clock: opts.Clock, logger: opts.Logger}
	if db.clock == nil {
		db.clock = dtm.SystemClock{}
	}
	if db.logger == nil {
		db.logger = slog.Default()
	}
	// Times are stored as integers; keep the session zone out of the way.
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	db.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := db.migrate(ctx); err != nil {
		db.pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return db, nil
}

// Close closes the connection pool, waiting for connections in use to be
// released. It is safe to call more than once and always returns nil.
func (db *DB) Close() error {
	db.closeOnce.Do(db.pool.Close)
	return nil
}

// fromMicros converts stored Unix microseconds to a UTC time; 0 is the zero
// time.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// toMicros converts t to Unix microseconds; the zero time is 0.
func toMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}
