package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/internal/pgtest"
	"github.com/dtm-project/dtm/postgres"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("SQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "dtm.db")
		for _, dsn := range []string{"sqlite:" + path, "sqlite://" + path} {
			s, err := store.Open(ctx, dsn, nil, nil)
			if err != nil {
				t.Fatalf("Open(%s): %v", dsn, err)
			}
			if _, ok := s.(*sqlite.DB); !ok {
				t.Fatalf("Open(%s) = %T, want *sqlite.DB", dsn, s)
			}
			if _, err := s.CreatePractice(ctx, dtm.Practice{ODS: "A12345"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("Postgres", func(t *testing.T) {
		url := pgtest.Start(t)
		s, err := store.Open(ctx, url, nil, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		if _, ok := s.(*postgres.DB); !ok {
			t.Fatalf("Open = %T, want *postgres.DB", s)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, dsn := range []string{"", "dtm.db", "mysql://x", "sqlite:"} {
			_, err := store.Open(ctx, dsn, nil, nil)
			if dtm.ErrorCode(err) != dtm.EInvalid {
				t.Errorf("Open(%q) = %v, want an EInvalid error", dsn, err)
			}
		}
	})
}

func TestRedact(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://dtm:s3cret@db.example:5432/dtm?sslmode=verify-full": "postgres://dtm:xxxxx@db.example:5432/dtm?sslmode=verify-full",
		"postgresql://dtm@db/dtm":    "postgresql://dtm@db/dtm",
		"sqlite:/var/lib/dtm/dtm.db": "sqlite:/var/lib/dtm/dtm.db",
	} {
		if got := store.Redact(dsn); got != want {
			t.Errorf("Redact(%q) = %q, want %q", dsn, got, want)
		}
	}
}
