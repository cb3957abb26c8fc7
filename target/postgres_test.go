package target_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/dtm-project/dtm/internal/pgtest"
	"github.com/dtm-project/dtm/postgres"
)

// TestPuller_Postgres pulls an initial extract and a delta into a
// PostgreSQL target store (skipped when PostgreSQL is unavailable, unless
// DTM_REQUIRE_POSTGRES is set).
func TestPuller_Postgres(t *testing.T) {
	t.Parallel()
	url := pgtest.Start(t)
	tgt, err := postgres.Open(context.Background(), url, postgres.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tgt.Close() })
	src := mustSource(t, 3)
	p := pullerFor(t, src.url, tgt, t.TempDir(), false)
	if _, err := p.Pull(t.Context(), testODS); err != nil {
		t.Fatal(err)
	}
	assertMigrated(t, src.db, tgt)
	changes := src.change(t, 5, 2, 1)
	res, err := p.Pull(t.Context(), testODS)
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts.Received != int64(changes) {
		t.Fatalf("delta of %d changes moved %+v", changes, res.Counts)
	}
	assertMigrated(t, src.db, tgt)
}
