package sqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrationFS holds the schema migrations, applied in order of their number.
// To change the schema, add the next file, e.g. migrations/0002_jobs.sql;
// never edit one that has been released.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// schemaVersionKey carries OpenAtVersion's last schema version to migrate.
type schemaVersionKey struct{}

// OpenAtVersion is Open, except that it applies no migration numbered above
// version: it leaves the store as a binary of that schema version would.
// It is a test hook, for upgrade tests that populate an old schema and then
// Open it normally; a store opened this way must not be used otherwise.
func OpenAtVersion(ctx context.Context, path string, opts Options, version int) (*DB, error) {
	return Open(context.WithValue(ctx, schemaVersionKey{}, version), path, opts)
}

// migrations returns the embedded migrations sorted by version. It returns an
// error for a file not named NNNN_name.sql or for a duplicated number.
func migrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", base)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s: same number", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// migrate applies, in one IMMEDIATE transaction, every migration newer than
// the database's schema version, recording each in schema_migrations. It
// refuses a database whose schema is newer than this binary knows.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations(migrationFS)
	if err != nil {
		return err
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_us INTEGER NOT NULL
	)`); err != nil {
		return err
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return err
	}
	if n := len(ms); n > 0 && current > ms[n-1].version {
		return fmt.Errorf("database schema version %d is newer than this binary's %d", current, ms[n-1].version)
	}
	limit, _ := ctx.Value(schemaVersionKey{}).(int)
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		if limit > 0 && m.version > limit {
			break
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_us) VALUES (?, ?, ?)`,
			m.version, m.name, db.clock.Now().UnixMicro()); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		db.logger.Info("schema migrated", "version", m.version, "name", m.name)
	}
	return tx.Commit()
}

// WriterPragma runs "PRAGMA " + pragma on the store's one writer connection,
// which every write uses, and returns its error. It is a fault-injection
// hook for tests: "max_page_count = N" fills the database as a full disk
// would (writes then fail with SQLITE_FULL), "query_only = ON" makes it
// read-only. The setting lasts until changed or the store is closed.
func (db *DB) WriterPragma(ctx context.Context, pragma string) error {
	if _, err := db.w.ExecContext(ctx, "PRAGMA "+pragma); err != nil {
		return fmt.Errorf("pragma: %w", err)
	}
	return nil
}
