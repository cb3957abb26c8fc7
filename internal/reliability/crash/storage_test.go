package crash_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/internal/pgtest"
	"github.com/dtm-project/dtm/postgres"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/sqlite"
)

// storageFault is one way to make a store refuse writes, and to undo it.
type storageFault struct {
	name    string
	inject  func(tb testing.TB)
	recover func(tb testing.TB)
	cause   string // what the store's error must say (the driver's words)
	code    string // the dtm code the caller sees: EStorageFull (507) or EUnavailable (503)
}

// checkStorageFault loads part of a practice, injects the fault, and then
// checks that a direct batch and an HTTP ingest both fail — the HTTP one
// with a 5xx FHIR OperationOutcome — without changing anything, and that
// after recovery the same writes succeed.
func checkStorageFault(t *testing.T, st dtm.Store, f storageFault) {
	ctx := context.Background()
	in := practice(t, patients)
	half := len(in.lines) / 2
	loadSource(t, st, &input{lines: in.lines[:half]})
	before, head := liveState(t, st), mustHead(t, st)

	f.inject(t)
	var writes []dtm.Write
	for _, l := range in.lines[half : half+500] {
		w, err := source.ResourceWrite(l)
		if err != nil {
			t.Fatal(err)
		}
		writes = append(writes, w)
	}
	_, err := st.Apply(ctx, odsCode, writes)
	if err == nil {
		t.Fatalf("%s: a batch of %d writes succeeded", f.name, len(writes))
	}
	if !strings.Contains(err.Error(), f.cause) {
		t.Fatalf("%s: Apply error %q does not say %q", f.name, err, f.cause)
	}
	if code := dtm.ErrorCode(err); code != f.code {
		t.Fatalf("%s: Apply error has code %q, want %q: %v", f.name, code, f.code, err)
	}
	t.Logf("%s: Apply: %v", f.name, err)

	srv := ingestServer(t, st)
	status, outcome := postNDJSON(t, srv.URL, in.lines[half:])
	if want := fhir.HTTPStatus(f.code); status != want {
		t.Fatalf("%s: ingest answered %d, want %d: %s", f.name, status, want, outcome)
	}
	assertOutcome(t, outcome)
	if !bytes.Contains(outcome, []byte("nothing of this write was applied")) {
		t.Fatalf("%s: the OperationOutcome does not say why: %s", f.name, outcome)
	}
	t.Logf("%s: POST ingest: %d %s", f.name, status, outcome)
	if after := liveState(t, st); !equalState(before, after) || mustHead(t, st) != head {
		t.Fatalf("%s: the store changed although every write failed (%d resources before, %d after)", f.name, len(before), len(after))
	}

	f.recover(t)
	var err2 error
	for range 3 { // a PostgreSQL pool may hand out one more connection that was terminated
		if status, outcome = postNDJSON(t, srv.URL, in.lines[half:]); status == http.StatusOK {
			break
		}
		err2 = errorsJoin(status, outcome)
	}
	if status != http.StatusOK {
		t.Fatalf("%s: after recovery, ingest still fails: %v", f.name, err2)
	}
	got := liveState(t, st)
	if len(got) != len(in.lines) {
		t.Fatalf("%s: after recovery the store holds %d of %d resources", f.name, len(got), len(in.lines))
	}
	for _, k := range in.keys {
		if v := got[k]; v.Hash != in.hash[k] || v.Version != 1 {
			t.Fatalf("%s: after recovery %s is %+v", f.name, k, v)
		}
	}
}

func errorsJoin(status int, body []byte) error {
	return &httpError{status, string(body)}
}

type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string { return http.StatusText(e.status) + ": " + e.body }

func mustHead(tb testing.TB, j dtm.Journal) dtm.Snapshot {
	tb.Helper()
	h, err := j.Head(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func equalState(a, b map[string]version) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// ingestServer serves the source control plane over st, with auth off.
func ingestServer(tb testing.TB, st dtm.Store) *httptest.Server {
	tb.Helper()
	mux := http.NewServeMux()
	h := &source.Handler{Store: st, Ingester: &source.Ingester{Journal: st, Logger: quietLogger()},
		Clock: dtm.SystemClock{}, Logger: quietLogger()}
	h.Routes(mux)
	srv := httptest.NewServer(auth.AllowAll(mux))
	tb.Cleanup(srv.Close)
	return srv
}

// postNDJSON posts lines to the practice's ingest endpoint.
func postNDJSON(tb testing.TB, base string, lines [][]byte) (int, []byte) {
	tb.Helper()
	body := bytes.Join(lines, []byte("\n"))
	resp, err := http.Post(base+"/dtm/v1/practices/"+odsCode+"/ingest", "application/fhir+ndjson", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK && resp.Header.Get("Content-Type") != "application/fhir+json" {
		tb.Fatalf("error answered as %q, want application/fhir+json", resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, b
}

// assertOutcome checks that b is a FHIR OperationOutcome with an error.
func assertOutcome(tb testing.TB, b []byte) {
	tb.Helper()
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity, Code, Diagnostics string
		} `json:"issue"`
	}
	if err := json.Unmarshal(b, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 ||
		oo.Issue[0].Severity != "error" {
		tb.Fatalf("not an error OperationOutcome: %s", b)
	}
}

// TestStorageFull_SQLite fills the database as a full disk would
// (PRAGMA max_page_count on the store's writer: SQLite then fails the
// write with SQLITE_FULL), then frees the space again.
func TestStorageFull_SQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := t.TempDir() + "/source.db"
	db, err := sqlite.Open(ctx, path, sqlite.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkStorageFault(t, db, storageFault{
		name: "disk full",
		inject: func(tb testing.TB) {
			// The file may not grow by more than a page; a batch of 500
			// resources needs many.
			if err := db.WriterPragma(ctx, "max_page_count = "+itoa(pageCount(tb, path)+1)); err != nil {
				tb.Fatal(err)
			}
		},
		recover: func(tb testing.TB) {
			if err := db.WriterPragma(ctx, "max_page_count = 4294967294"); err != nil {
				tb.Fatal(err)
			}
		},
		cause: "database or disk is full",
		code:  dtm.EStorageFull,
	})
}

// TestStorageReadOnly_SQLite makes the store read-only under a running
// source (PRAGMA query_only on its writer), then writable again.
func TestStorageReadOnly_SQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir()+"/source.db", sqlite.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkStorageFault(t, db, storageFault{
		name:    "read-only",
		inject:  func(tb testing.TB) { mustPragma(tb, db, "query_only = ON") },
		recover: func(tb testing.TB) { mustPragma(tb, db, "query_only = OFF") },
		cause:   "readonly database",
		code:    dtm.EUnavailable,
	})
}

func mustPragma(tb testing.TB, db *sqlite.DB, p string) {
	tb.Helper()
	if err := db.WriterPragma(context.Background(), p); err != nil {
		tb.Fatal(err)
	}
}

// pageCount returns the number of pages of the SQLite database at path.
func pageCount(tb testing.TB, path string) int {
	tb.Helper()
	db, err := sql.Open("sqlite", path+"?_query_only=on")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`PRAGMA page_count`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestStorageReadOnly_Postgres makes the database read-only under a
// running source (default_transaction_read_only for the database, and its
// sessions ended so that the pool reconnects, as after a failover to a
// read-only server), then writable again.
func TestStorageReadOnly_Postgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.Start(t)
	db, err := postgres.Open(ctx, url, postgres.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	setReadOnly := func(tb testing.TB, on bool) {
		v := map[bool]string{true: "on", false: "off"}[on]
		pgExec(tb, url, `SET default_transaction_read_only = off`,
			`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = `+v+`', current_database()); END $$`)
		pgExec(tb, url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	}
	checkStorageFault(t, retrying{db}, storageFault{
		name:    "read-only",
		inject:  func(tb testing.TB) { setReadOnly(tb, true) },
		recover: func(tb testing.TB) { setReadOnly(tb, false) },
		cause:   "read-only transaction",
		code:    dtm.EUnavailable,
	})
}

// TestStorageFull_Postgres makes PostgreSQL fail a batch part-way with
// disk_full (SQLSTATE 53100), the error it raises when a data file cannot
// be extended for lack of space, then frees the space again. A real full
// disk would need a small file system for a tablespace, which a test
// cannot count on being allowed to mount; a trigger that raises the same
// error from the 101st journal row on fails the next batch in
// the middle, where atomicity matters. (The raise is a stand-in for the
// write failing; what is tested is the error path and the rollback.)
func TestStorageFull_Postgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.Start(t)
	db, err := postgres.Open(ctx, url, postgres.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkStorageFault(t, db, storageFault{
		name:    "disk full",
		inject:  func(tb testing.TB) { pgExec(tb, url, diskFullAfter(100)) },
		recover: func(tb testing.TB) { pgExec(tb, url, diskFreed) },
		cause:   "No space left on device",
		code:    dtm.EStorageFull,
	})
}

// diskFullAfter returns SQL that makes every journal row after the next
// n fail with PostgreSQL's own disk-full error (SQLSTATE 53100), as a
// disk with room for n more rows would; diskFreed undoes it.
func diskFullAfter(n int) string {
	return `CREATE SEQUENCE disk_rows;
CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF nextval('disk_rows') > ` + strconv.Itoa(n) + ` THEN
		RAISE EXCEPTION 'could not extend file "base/16384/16385": No space left on device'
			USING ERRCODE = 'disk_full', HINT = 'Check free disk space.';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER disk_full BEFORE INSERT ON journal FOR EACH ROW EXECUTE FUNCTION disk_full();`
}

// diskFreed removes what diskFullAfter added.
const diskFreed = `DROP TRIGGER disk_full ON journal; DROP FUNCTION disk_full(); DROP SEQUENCE disk_rows`

// pgExec runs statements on a connection of its own to url.
func pgExec(tb testing.TB, url string, statements ...string) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range statements {
		if _, err := conn.Exec(ctx, sql); err != nil {
			tb.Fatalf("%s: %v", sql, err)
		}
	}
}

// retrying is a store whose Apply, like a caller that retries a failed
// request, tries again once after an error from a connection that the
// server ended (SQLSTATE 57P01); any other error is returned.
type retrying struct{ *postgres.DB }

func (r retrying) Apply(ctx context.Context, practice string, writes []dtm.Write) (dtm.Commit, error) {
	c, err := r.DB.Apply(ctx, practice, writes)
	if err != nil && strings.Contains(err.Error(), "57P01") {
		return r.DB.Apply(ctx, practice, writes)
	}
	return c, err
}
