package sqlite_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/storetest"
)

// MustOpen opens a new database in a temporary directory, closed when tb ends.
func MustOpen(tb testing.TB) *sqlite.DB {
	tb.Helper()
	return MustOpenClock(tb, dtm.SystemClock{})
}

// MustOpenClock is MustOpen with a clock.
func MustOpenClock(tb testing.TB, clock dtm.Clock) *sqlite.DB {
	tb.Helper()
	return MustOpenPath(tb, filepath.Join(tb.TempDir(), "dtm.db"), clock)
}

// MustOpenPath opens the database at path, closed when tb ends.
func MustOpenPath(tb testing.TB, path string, clock dtm.Clock) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return db
}

func TestDB(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock dtm.Clock) dtm.Store { return MustOpenClock(t, clock) })
}

func BenchmarkDB_Apply(b *testing.B) { storetest.BenchmarkApply(b, MustOpen(b)) }

func BenchmarkDB_Changes(b *testing.B) { storetest.BenchmarkChanges(b, MustOpen(b), 200_000) }
