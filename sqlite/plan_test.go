package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// TestDB_QueryPlans checks that the journal queries whose cost must not grow
// with the practice's size use the intended indexes.
func TestDB_QueryPlans(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "dtm.db"), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name  string
		query string
		args  []any
		want  []string // each must appear in the plan
	}{
		{"ChangesType", changesTypeSQL, []any{"A", "T", 0, 1, 1, 10},
			[]string{"SEARCH j USING INDEX journal_type (practice=? AND type=? AND seq>? AND seq<?)", "SEARCH k USING COVERING INDEX journal_key (practice=? AND type=? AND id=? AND seq>? AND seq<?)"}},
		{"ChangesAll", changesAllSQL, []any{"A", 0, 1, 1, 10},
			[]string{"SEARCH j USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)", "journal_key"}},
		{"Compartment", compartmentSQL, []any{"A", "p", 0, 1, 1, 10},
			[]string{"SEARCH j USING INDEX journal_patient (practice=? AND patient=? AND seq>? AND seq<?)", "journal_key"}},
		{"HeadersType", headersTypeSQL, []any{"A", "T", 0, 1, 1, 10},
			[]string{"SEARCH j USING INDEX journal_type (practice=? AND type=? AND seq>? AND seq<?)", "journal_key"}},
		{"HeadersAll", headersAllSQL, []any{"A", 0, 1, 1, 10},
			[]string{"SEARCH j USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)", "journal_key"}},
		{"DigestNoPatient", digestNoPatientSQL, []any{"A", 0, 1, 1, 10},
			[]string{"SEARCH j USING COVERING INDEX journal_nopatient (practice=? AND seq>? AND seq<?)", "journal_key"}},
		{"DigestPatient", digestPatientSQL, []any{"A", "p", 0, 1, 1, 10},
			[]string{"SEARCH j USING INDEX journal_patient (practice=? AND patient>?)", "journal_key"}},
		{"State", stateSQL, []any{"A", "T", "i", 1},
			[]string{"SEARCH j USING INDEX journal_key (practice=? AND type=? AND id=? AND seq<?)"}},
		{"States", statesSQL(3), []any{"A", "T", "a", "b", "c"},
			[]string{"SEARCH journal USING INDEX journal_key (practice=? AND type=? AND id=?)"}},
		{"CountsDelta", countsDeltaSQL, []any{1, "A", 1, 2, 2},
			[]string{"SEARCH j USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)", "journal_key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := db.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+tc.query, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			all := strings.Join(plan, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("plan lacks %q:\n%s", w, all)
				}
			}
			if strings.Contains(all, "SCAN ") || strings.Contains(all, "TEMP B-TREE") {
				t.Errorf("plan scans or sorts the journal:\n%s", all)
			}
			fmt.Fprintln(testWriter{t}, all)
		})
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
