package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrationFS holds the schema migrations, applied in order of their number.
// To change the schema, add the next file, e.g. migrations/0002_jobs.sql;
// never edit one that has been released.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the advisory lock key that serialises migrations of
// processes opening the same database at once ("dtm" in ASCII).
const migrationLock = 0x64746d

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
func OpenAtVersion(ctx context.Context, url string, opts Options, version int) (*DB, error) {
	return Open(context.WithValue(ctx, schemaVersionKey{}, version), url, opts)
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

// migrate applies, in one transaction holding an advisory lock, every
// migration newer than the database's schema version, recording each in
// schema_migrations. It refuses a database whose schema is newer than this
// binary knows.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations(migrationFS)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_us bigint NOT NULL
		)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
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
			// The simple protocol runs a file of several statements.
			if _, err := tx.Exec(ctx, m.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_us) VALUES ($1, $2, $3)`,
				m.version, m.name, db.clock.Now().UnixMicro()); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			db.logger.Info("schema migrated", "version", m.version, "name", m.name)
		}
		return nil
	})
}
