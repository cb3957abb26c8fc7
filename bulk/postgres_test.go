package bulk

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/dtm-project/dtm/internal/pgtest"
	"github.com/dtm-project/dtm/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newPostgresEnv serves a new, empty PostgreSQL database (skipped when no
// server can be had; see pgtest.Start).
func newPostgresEnv(tb testing.TB, workers bool, configure func(*Config)) *testEnv {
	tb.Helper()
	db, err := postgres.Open(context.Background(), pgtest.Start(tb), postgres.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return newStoreEnv(tb, db, workers, configure)
}

// TestExport_ExactlyOnce_Postgres runs the exactly-once property test
// against PostgreSQL, where several replicas share one database.
func TestExport_ExactlyOnce_Postgres(t *testing.T) {
	for seed := range uint64(2) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			e := newPostgresEnv(t, true, func(c *Config) { c.MaxFileResources = 7; c.MaxActiveJobs = 10 })
			testExactlyOnceEnv(t, e, "/fhir/$export", true, seed)
		})
	}
}

// TestExport_GroupDelta_Postgres runs the Group delta scenario on
// PostgreSQL.
func TestExport_GroupDelta_Postgres(t *testing.T) {
	testGroupFullThenDelta(t, newPostgresEnv(t, true, nil))
}
