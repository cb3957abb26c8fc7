package sqlite

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestMigrations(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		ms, err := migrations(fstest.MapFS{
			"migrations/0010_b.sql": {Data: []byte("B")},
			"migrations/0002_a.sql": {Data: []byte("A")},
		})
		if err != nil || len(ms) != 2 || ms[0].version != 2 || ms[1].version != 10 || ms[1].sql != "B" {
			t.Fatalf("migrations = %+v, %v", ms, err)
		}
	})
	t.Run("ErrName", func(t *testing.T) {
		for _, name := range []string{"init.sql", "x_init.sql", "0000_zero.sql", "0001.sql"} {
			if _, err := migrations(fstest.MapFS{"migrations/" + name: {}}); err == nil {
				t.Errorf("migration %s accepted", name)
			}
		}
	})
	t.Run("ErrDuplicate", func(t *testing.T) {
		if _, err := migrations(fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/1_b.sql": {}}); err == nil {
			t.Fatal("two migrations numbered 1 accepted")
		}
	})
	t.Run("Embedded", func(t *testing.T) {
		if _, err := migrations(migrationFS); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOpen_Migrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dtm.db")
	opts := Options{Logger: slog.New(slog.DiscardHandler)}
	db, err := Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := migrations(migrationFS)
	latest := ms[len(ms)-1].version
	var n, version int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &version); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || version != latest {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d up to %d", n, version, len(ms), latest)
	}
	var mode string
	if err := db.r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	db.Close()

	t.Run("Reopen", func(t *testing.T) {
		db, err := Open(ctx, path, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
			t.Fatalf("after reopening: %d migrations recorded, %v", n, err)
		}
	})
	t.Run("ErrNewerSchema", func(t *testing.T) {
		db, err := Open(ctx, path, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_us) VALUES (?, 'future.sql', 0)`, latest+1); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err = Open(ctx, path, opts)
		if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
			t.Fatalf("Open of a newer schema = %v, want refusal", err)
		}
	})
	t.Run("ErrPath", func(t *testing.T) {
		for _, p := range []string{"", "a?b.db", filepath.Join(t.TempDir(), "missing", "dir", "x.db")} {
			if db, err := Open(ctx, p, opts); err == nil {
				db.Close()
				t.Errorf("Open(%q) succeeded", p)
			}
		}
	})
}
