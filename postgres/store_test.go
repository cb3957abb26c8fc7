package postgres_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/internal/pgtest"
	"github.com/dtm-project/dtm/postgres"
	"github.com/dtm-project/dtm/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// MustOpen opens a new, empty database on the test server, closed when tb
// ends. It skips tb when PostgreSQL is unavailable (see pgtest.Start).
func MustOpen(tb testing.TB) *postgres.DB {
	tb.Helper()
	return MustOpenClock(tb, dtm.SystemClock{})
}

// MustOpenClock is MustOpen with a clock.
func MustOpenClock(tb testing.TB, clock dtm.Clock) *postgres.DB {
	tb.Helper()
	return MustOpenURL(tb, pgtest.Start(tb), clock)
}

// MustOpenURL opens the database at url, closed when tb ends.
func MustOpenURL(tb testing.TB, url string, clock dtm.Clock) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.Options{Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestDB(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock dtm.Clock) dtm.Store { return MustOpenClock(t, clock) })
}

func BenchmarkDB_Apply(b *testing.B) { storetest.BenchmarkApply(b, MustOpen(b)) }

func BenchmarkDB_Changes(b *testing.B) { storetest.BenchmarkChanges(b, MustOpen(b), 200_000) }
