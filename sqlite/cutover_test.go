package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/storetest"
)

func TestDB_Cutovers(t *testing.T) {
	storetest.RunCutover(t, func(t *testing.T) dtm.Cutovers { return MustOpen(t) })
}

func TestDB_ConfirmationsAppendOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dtm.db")
	db := MustOpenPath(t, path, dtm.SystemClock{})
	if err := db.AddConfirmation(t.Context(), dtm.Confirmation{ID: "c1", Plan: "p"}); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, q := range []string{`UPDATE cutover_confirmations SET doc = '{}'`, `DELETE FROM cutover_confirmations`} {
		if _, err := raw.ExecContext(t.Context(), q); err == nil {
			t.Errorf("%s: allowed", q)
		}
	}
}
