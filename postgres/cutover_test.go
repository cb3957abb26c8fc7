package postgres_test

import (
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/internal/pgtest"
	"github.com/dtm-project/dtm/storetest"
	"github.com/jackc/pgx/v5"
)

func TestDB_Cutovers(t *testing.T) {
	storetest.RunCutover(t, func(t *testing.T) dtm.Cutovers { return MustOpen(t) })
}

func TestDB_ConfirmationsAppendOnly(t *testing.T) {
	url := pgtest.Start(t)
	db := MustOpenURL(t, url, dtm.SystemClock{})
	ctx := t.Context()
	if err := db.AddConfirmation(ctx, dtm.Confirmation{ID: "c1", Plan: "p"}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{`UPDATE cutover_confirmations SET doc = '{}'`, `DELETE FROM cutover_confirmations`, `TRUNCATE cutover_confirmations`} {
		if _, err := conn.Exec(ctx, q); err == nil {
			t.Errorf("%s: allowed", q)
		}
	}
}
