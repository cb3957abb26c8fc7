package crash_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/internal/pgtest"
	"github.com/dtm-project/dtm/postgres"
	"github.com/dtm-project/dtm/sqlite"
)

// fullStore is everything a store implementation keeps, by schema version:
// the journal and practices (1), export jobs (2), target state (10),
// clients (20) and data issues (30).
type fullStore interface {
	dtm.Store
	dtm.ExportJobs
	dtm.TargetState
	dtm.Clients
	dtm.Issues
}

// schemaVersions returns the numbers of the migrations in dir, in order.
func schemaVersions(tb testing.TB, dir string) []int {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil || len(names) < 2 {
		tb.Fatalf("migrations in %s: %d (%v)", dir, len(names), err)
	}
	var vs []int
	for _, n := range names {
		num, _, _ := strings.Cut(filepath.Base(n), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			tb.Fatal(err)
		}
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// upgradeKinds open a store at a schema version (0: the latest), and dump
// every row of every table as text.
var upgradeKinds = []struct {
	name string
	dir  string // its migrations
	new  func(tb testing.TB) string
	open func(ctx context.Context, dsn string, version int) (fullStore, error)
	dump func(tb testing.TB, dsn string) map[string][]string
}{
	{"sqlite", "../../../sqlite/migrations",
		func(tb testing.TB) string { return tb.TempDir() + "/store.db" },
		func(ctx context.Context, path string, v int) (fullStore, error) {
			return sqlite.OpenAtVersion(ctx, path, sqlite.Options{Logger: quietLogger()}, v)
		},
		dumpSQLite},
	{"postgres", "../../../postgres/migrations",
		func(tb testing.TB) string { return pgtest.Start(tb) },
		func(ctx context.Context, url string, v int) (fullStore, error) {
			return postgres.OpenAtVersion(ctx, url, postgres.Options{Logger: quietLogger()}, v)
		},
		dumpPostgres},
}

// TestUpgrade_Populated builds a store at each older schema version, fills
// it with everything that version can hold (records with updates and
// deletes, an export job, a pull and its checkpoint, a client, a data
// issue), then opens it with this binary, which migrates it to the latest
// version: every row of every table must survive unchanged, every resource
// and job must read back the same, and the upgraded store must take new
// writes of every kind.
func TestUpgrade_Populated(t *testing.T) {
	t.Parallel()
	for _, kind := range upgradeKinds {
		t.Run(kind.name, func(t *testing.T) {
			allVersions := schemaVersions(t, kind.dir)
			latest := allVersions[len(allVersions)-1]
			for _, v := range allVersions[:len(allVersions)-1] { // each version an older binary could have left
				t.Run(fmt.Sprint("from", v), func(t *testing.T) {
					ctx := context.Background()
					dsn := kind.new(t)
					old, err := kind.open(ctx, dsn, v)
					if err != nil {
						t.Fatal(err)
					}
					populate(t, old, v)
					before := readBack(t, old, v)
					old.Close()
					rows := kind.dump(t, dsn)
					if got := len(rows["schema_migrations"]); got != slices.Index(allVersions, v)+1 {
						t.Fatalf("store at version %d records %d migrations", v, got)
					}

					st, err := kind.open(ctx, dsn, 0)
					if err != nil {
						t.Fatalf("upgrade from version %d: %v", v, err)
					}
					defer st.Close()
					if diff := cmp.Diff(before, readBack(t, st, v)); diff != "" {
						t.Fatalf("after upgrade from version %d (-before +after):\n%s", v, diff)
					}
					after := kind.dump(t, dsn)
					for table, want := range rows {
						if table == "schema_migrations" {
							continue
						}
						if diff := cmp.Diff(want, after[table]); diff != "" {
							t.Fatalf("table %s changed by the upgrade from version %d (-before +after):\n%s", table, v, diff)
						}
					}
					if got := len(after["schema_migrations"]); got != len(allVersions) {
						t.Fatalf("upgraded store records %d migrations, want %d", got, len(allVersions))
					}
					populate(t, st, latest) // every kind of write works after it
					t.Logf("from version %d: %d tables, %d rows kept", v, len(rows), countRows(rows))
				})
			}
		})
	}
}

func countRows(rows map[string][]string) int {
	n := 0
	for _, r := range rows {
		n += len(r)
	}
	return n
}

// populate writes what a store at schema version v can hold. Called again
// on the same store it adds more.
func populate(tb testing.TB, st fullStore, v int) {
	tb.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	if _, err := st.CreatePractice(ctx, dtm.Practice{ODS: odsCode, Name: "Upgrade Surgery"}); err != nil {
		tb.Fatal(err)
	}
	in := practice(tb, 2)
	loadSource(tb, st, in)
	var writes []dtm.Write
	for i, key := range in.keys[len(in.keys)-20:] {
		typ, id, _ := cutKey(key)
		if typ != "Patient" && i%4 == 0 {
			writes = append(writes, dtm.Write{Type: typ, ID: id, Op: dtm.OpDelete})
		}
	}
	writes = append(writes, dtm.Write{Type: "Organization", ID: "upgrade-" + rand8(), Op: dtm.OpUpsert,
		JSON: []byte(`{"resourceType":"Organization","id":"x","name":"Upgrade test"}`)})
	writes[len(writes)-1].JSON = []byte(`{"resourceType":"Organization","id":"` + writes[len(writes)-1].ID + `","name":"Upgrade test"}`)
	if _, err := st.Apply(ctx, odsCode, writes); err != nil {
		tb.Fatal(err)
	}
	if err := st.SetWatermark(ctx, odsCode, now); err != nil {
		tb.Fatal(err)
	}
	if v >= 2 {
		head, _ := st.Head(ctx)
		_, err := st.CreateJob(ctx, dtm.ExportJob{ID: "job-" + rand8(), Kind: dtm.ExportGroup, Practices: []string{odsCode},
			Until: head.Seq, TransactionTime: head.Time, Request: "http://x/fhir/Group/" + odsCode + "/$export",
			Status: dtm.JobComplete, Progress: "complete", CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour),
			Files: []dtm.ExportFile{{Kind: dtm.FileOutput, Type: "Patient", Count: 2}}})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if v >= 10 {
		p := dtm.PullRecord{ID: "pull-" + rand8(), Source: "http://source", Practice: odsCode, Status: dtm.PullComplete,
			StatusURL: "http://source/status/1", Manifest: []byte(`{"transactionTime":"2026-01-01T00:00:00Z"}`),
			TransactionTime: now, StartedAt: now, FinishedAt: now}
		if err := st.SavePull(ctx, p); err != nil {
			tb.Fatal(err)
		}
		if err := st.CompletePull(ctx, p); err != nil {
			tb.Fatal(err)
		}
	}
	if v >= 20 {
		if _, err := st.CreateClient(ctx, dtm.Client{ID: "tss-" + rand8(), Name: "Target Supplier",
			JWKS: `{"keys":[]}`, Practices: []string{odsCode}}); err != nil {
			tb.Fatal(err)
		}
	}
	if v >= 30 {
		issue := dtm.DataIssue{Practice: odsCode, Severity: "error", Category: dtm.IssueOther,
			Title: "Upgrade issue", Resources: []string{in.keys[0]}}
		if err := issue.Apply(dtm.IssueAction{Action: dtm.IssueRaise, Actor: "tss", At: now}); err != nil {
			tb.Fatal(err)
		}
		if _, err := st.CreateIssue(ctx, issue); err != nil {
			tb.Fatal(err)
		}
	}
}

// readBack reads, through the store's API, everything populate wrote for
// schema version v.
func readBack(tb testing.TB, st fullStore, v int) map[string]any {
	tb.Helper()
	ctx := context.Background()
	out := map[string]any{}
	head, err := st.Head(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	out["head"] = head
	out["state"] = liveState(tb, st)
	counts, err := st.Counts(ctx, odsCode, head.Seq)
	if err != nil {
		tb.Fatal(err)
	}
	out["counts"] = counts
	p, err := st.Practice(ctx, odsCode)
	if err != nil {
		tb.Fatal(err)
	}
	out["practice"] = p
	if v >= 10 {
		pulls, err := st.Pulls(ctx, odsCode, 100)
		if err != nil {
			tb.Fatal(err)
		}
		cp, err := st.Checkpoint(ctx, "http://source", odsCode)
		if err != nil {
			tb.Fatal(err)
		}
		out["pulls"], out["checkpoint"] = pulls, cp
	}
	if v >= 20 {
		cs, err := st.ListClients(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		out["clients"] = cs
	}
	if v >= 30 {
		is, err := st.ListIssues(ctx, dtm.IssueQuery{Practice: odsCode})
		if err != nil {
			tb.Fatal(err)
		}
		out["issues"] = is
	}
	return out
}

func rand8() string { return fmt.Sprintf("%08x", time.Now().UnixNano()&0xffffffff) }

// dumpSQLite returns every row of every table of the SQLite file, as
// sorted text lines.
func dumpSQLite(tb testing.TB, path string) map[string][]string {
	tb.Helper()
	db, err := sql.Open("sqlite", path+"?_query_only=on")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	tables, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	out := map[string][]string{}
	for _, n := range names {
		rows, err := db.Query(`SELECT * FROM "` + n + `"`)
		if err != nil {
			tb.Fatal(err)
		}
		cols, _ := rows.Columns()
		out[n] = []string{}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatal(err)
			}
			var b strings.Builder
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%s=%v|", cols[i], v)
			}
			out[n] = append(out[n], b.String())
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
		rows.Close()
		slices.Sort(out[n])
	}
	return out
}

// dumpPostgres returns every row of every table of the database, as sorted
// text lines.
func dumpPostgres(tb testing.TB, url string) map[string][]string {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	if err != nil {
		tb.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]string{}
	for _, n := range names {
		rows, err := conn.Query(ctx, `SELECT t::text FROM "`+n+`" t`)
		if err != nil {
			tb.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			tb.Fatal(err)
		}
		slices.Sort(lines)
		out[n] = append([]string{}, lines...)
	}
	return out
}
