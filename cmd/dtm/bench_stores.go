package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/store"
	"github.com/jackc/pgx/v5"
)

// isPostgresDSN reports whether dsn names a PostgreSQL server.
func isPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// benchTargetDB returns the kind of target store: --target-db, or else the
// kind of --db.
func benchTargetDB(o benchOptions) string {
	if o.targetDB != "" {
		return o.targetDB
	}
	return o.db
}

// benchStores names the run's stores, "SQLite → PostgreSQL" (source →
// target), for the results.
func benchStores(o benchOptions) string {
	if o.sourceOnly {
		return storeKind(o.db) + " source"
	}
	return storeKind(o.db) + " → " + storeKind(benchTargetDB(o))
}

// openStores opens a new, empty source store and, unless --source-only, a
// new, empty target store for this practice size: SQLite files in the run's
// directory, or databases the bench creates on the PostgreSQL servers named
// by --db and --target-db (and drops when the run closes).
func (b *benchRun) openStores(ctx context.Context) error {
	src, err := b.newStore(ctx, b.o.db, "src")
	if err != nil {
		return fmt.Errorf("source store: %w", err)
	}
	b.src = src
	if b.o.sourceOnly {
		return nil
	}
	st, err := b.newStore(ctx, benchTargetDB(b.o), "tgt")
	if err != nil {
		return fmt.Errorf("target store: %w", err)
	}
	tgt, ok := st.(cutoverStore)
	if !ok {
		return errors.New("target store cannot hold target state and cutover records")
	}
	b.tgt = tgt
	return nil
}

// newStore opens a new store of kind (see openStores) for role "src" or
// "tgt", and registers its closing and dropping in b.cleanup.
func (b *benchRun) newStore(ctx context.Context, kind, role string) (dtm.Store, error) {
	dsn := "sqlite:" + filepath.Join(b.dir, role+".db")
	if isPostgresDSN(kind) {
		name, err := pgDatabaseName(kind)
		if err != nil {
			return nil, err
		}
		name = fmt.Sprintf("%s_%s_%d", name, role, b.patients)
		if dsn, err = createPGDatabase(ctx, kind, name); err != nil {
			return nil, err
		}
		b.cleanup = append(b.cleanup, func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dropPGDatabase(ctx, kind, name)
		})
	}
	st, err := store.Open(ctx, dsn, nil, b.log)
	if err != nil {
		return nil, err
	}
	b.cleanup = append(b.cleanup, func() { st.Close() })
	return st, nil
}

// pgDatabaseName returns the database a postgres:// URL names.
func pgDatabaseName(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("%s: %w", store.Redact(dsn), err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return "", fmt.Errorf("%s names no database", store.Redact(dsn))
	}
	return name, nil
}

// createPGDatabase creates database name, new and empty (dropping one left
// by an earlier run), on the server of dsn and returns its URL.
func createPGDatabase(ctx context.Context, dsn, name string) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", store.Redact(dsn), err)
	}
	defer conn.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", fmt.Errorf("create database %s (the role needs CREATEDB): %w", name, err)
	}
	u, _ := url.Parse(dsn)
	u.Path = "/" + name
	return u.String(), nil
}

// dropPGDatabase drops database name on the server of dsn, best effort.
func dropPGDatabase(ctx context.Context, dsn, name string) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}
