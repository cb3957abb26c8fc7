// Package store opens a dtm.Store from the --db flag's value. It is the one
// package that imports both implementations, so that the CLI (and only the
// CLI) chooses between them.
package store

import (
	"context"
	"log/slog"
	"net/url"
	"strings"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/postgres"
	"github.com/dtm-project/dtm/sqlite"
)

// Open opens the store named by dsn: "sqlite:PATH" for an embedded SQLite
// database (created if missing), or a "postgres://…" or "postgresql://…" URL.
// clock (dtm.SystemClock{} when nil) stamps commit times; logger
// (slog.Default() when nil) gets operational messages. It returns an
// EInvalid error for any other form of dsn, and the implementation's error
// when the store cannot be opened. The caller must Close the store.
func Open(ctx context.Context, dsn string, clock dtm.Clock, logger *slog.Logger) (dtm.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		path = strings.TrimPrefix(path, "//") // also accept sqlite://PATH
		db, err := sqlite.Open(ctx, path, sqlite.Options{Clock: clock, Logger: logger})
		if err != nil {
			return nil, err
		}
		return db, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err := postgres.Open(ctx, dsn, postgres.Options{Clock: clock, Logger: logger})
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	return nil, dtm.Errorf(dtm.EInvalid, "--db must be sqlite:PATH or a postgres:// URL")
}

// Redact returns dsn with any password replaced by "xxxxx", for logs and
// status pages.
func Redact(dsn string) string {
	if !strings.HasPrefix(dsn, "postgres") {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable)"
	}
	return u.Redacted()
}
