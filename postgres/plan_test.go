package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/internal/pgtest"
	"github.com/dtm-project/dtm/storetest"
)

// TestDB_QueryPlans checks, on an analysed journal of 50,000 resources, that
// the planner answers a 1,000-change delta through the indexes and never by
// scanning or hashing the practice's journal.
func TestDB_QueryPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 50,000 resources")
	}
	ctx := context.Background()
	db, err := Open(ctx, pgtest.Start(t), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreatePractice(ctx, dtm.Practice{ODS: storetest.PracticeA}); err != nil {
		t.Fatal(err)
	}
	const size = 50_000
	for i := 0; i < size; i += storetest.BatchSize {
		ws := make([]dtm.Write, storetest.BatchSize)
		for j := range ws {
			id := fmt.Sprintf("o%d", i+j)
			ws[j] = storetest.Upsert("Observation", id, fmt.Sprintf("p%d", (i+j)/50), []byte(fmt.Sprintf(`{"resourceType":"Observation","id":%q}`, id)))
		}
		if _, err := db.Apply(ctx, storetest.PracticeA, ws); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.pool.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	since, until := int64(size-1000), int64(size)
	for _, tc := range []struct {
		name  string
		query string
		args  []any
	}{
		{"ChangesType", changesTypeSQL, []any{storetest.PracticeA, "Observation", since, until, pageSize}},
		{"ChangesAll", changesAllSQL, []any{storetest.PracticeA, since, until, pageSize}},
		{"Compartment", compartmentSQL, []any{storetest.PracticeA, "p7", 0, until, pageSize}},
		{"CountsDelta", countsDeltaSQL, []any{storetest.PracticeA, since, until}},
		{"HeadersType", headersTypeSQL, []any{storetest.PracticeA, "Observation", since, until, pageSize}},
		{"HeadersAll", headersAllSQL, []any{storetest.PracticeA, since, until, pageSize}},
		{"DigestNoPatient", digestNoPatientSQL, []any{storetest.PracticeA, 0, until, digestPageSize}},
		{"DigestPatient", digestPatientSQL, []any{storetest.PracticeA, "p7", 300, until, digestPageSize}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := db.pool.Query(ctx, "EXPLAIN "+tc.query, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				lines = append(lines, line)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			plan := strings.Join(lines, "\n")
			t.Logf("\n%s", plan)
			for _, bad := range []string{"Seq Scan on journal", "Hash Anti Join", "Hash Join", "Bitmap Heap Scan on journal k"} {
				if strings.Contains(plan, bad) {
					t.Errorf("plan has %q", bad)
				}
			}
			if strings.HasPrefix(tc.name, "Digest") && strings.Contains(plan, "Sort") {
				t.Errorf("plan sorts: a page must walk the index in order")
			}
		})
	}
}
