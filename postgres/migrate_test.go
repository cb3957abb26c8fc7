package postgres

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/dtm-project/dtm/internal/pgtest"
)

func TestMigrations(t *testing.T) {
	if _, err := migrations(migrationFS); err != nil {
		t.Fatal(err)
	}
}

func TestOpen_Migrate(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	opts := Options{Logger: slog.New(slog.DiscardHandler)}
	ms, _ := migrations(migrationFS)
	latest := ms[len(ms)-1].version

	t.Run("Concurrent", func(t *testing.T) {
		// Replicas starting together migrate once.
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db, err := Open(ctx, url, opts)
				if err == nil {
					db.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		db, err := Open(ctx, url, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n, version int
		if err := db.pool.QueryRow(ctx, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &version); err != nil {
			t.Fatal(err)
		}
		if n != len(ms) || version != latest {
			t.Fatalf("schema_migrations has %d rows up to %d, want %d up to %d", n, version, len(ms), latest)
		}
	})
	t.Run("ErrNewerSchema", func(t *testing.T) {
		db, err := Open(ctx, url, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_us) VALUES ($1, 'future.sql', 0)`, latest+1); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err = Open(ctx, url, opts)
		if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
			t.Fatalf("Open of a newer schema = %v, want refusal", err)
		}
	})
}
