package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/jackc/pgx/v5"
)

// pageSize is how many journal rows Changes and Compartment read per query.
// Between pages no connection or transaction is held, so a slow fn (writing
// to an HTTP response) holds back neither the pool nor vacuum. Paging is
// exact because rows at or below a committed snapshot never change.
const pageSize = 500

// changeCols are the journal columns scanChange reads, prefixed for alias j.
const changeCols = `j.seq, j.practice, j.type, j.id, j.version, j.op, j.commit_us, j.patient, j.member, j.hash, j.json`

// headerCols are changeCols without the resource body (NULL in its place),
// so that neither the body nor its TOAST chunks are read.
const headerCols = `j.seq, j.practice, j.type, j.id, j.version, j.op, j.commit_us, j.patient, j.member, j.hash, NULL::bytea`

// notLater is true for a journal row j that is its resource's latest change
// at or before the seq bound to parameter $N, N given by the format verb.
// It is a scalar subquery, not NOT EXISTS: PostgreSQL turns NOT EXISTS into
// an anti join and may hash the practice's whole journal for it, while a
// correlated scalar subquery stays one index probe per candidate row
// (TestDB_QueryPlans checks).
const notLater = `j.seq = (SELECT k.seq FROM journal k WHERE k.practice = j.practice AND k.type = j.type
	AND k.id = j.id AND k.seq <= $%d ORDER BY k.seq DESC LIMIT 1)`

// The journal queries. TestDB_QueryPlans checks their plans.
var (
	// changesTypeSQL pages through one type's changes in ($3, $4]:
	// practice, type, cursor, until, limit.
	changesTypeSQL  = `SELECT ` + changeCols + changesTypeFrom
	changesTypeFrom = ` FROM journal j
		WHERE j.practice = $1 AND j.type = $2 AND j.seq > $3 AND j.seq <= $4 AND ` + fmt.Sprintf(notLater, 4) + `
		ORDER BY j.seq LIMIT $5`
	// changesAllSQL pages through every type's changes: practice, cursor,
	// until, limit.
	changesAllSQL  = `SELECT ` + changeCols + changesAllFrom
	changesAllFrom = ` FROM journal j
		WHERE j.practice = $1 AND j.seq > $2 AND j.seq <= $3 AND ` + fmt.Sprintf(notLater, 3) + `
		ORDER BY j.seq LIMIT $4`
	// headersTypeSQL and headersAllSQL are changesTypeSQL and changesAllSQL
	// without the bodies (ChangeHeaders).
	headersTypeSQL = `SELECT ` + headerCols + changesTypeFrom
	headersAllSQL  = `SELECT ` + headerCols + changesAllFrom
	// digestNoPatientSQL pages through the rows at or below $3 of the
	// resources in no compartment, by seq, through the index
	// journal_nopatient, saying of each whether it is its resource's state
	// at $3: practice, cursor, at, limit.
	digestNoPatientSQL = `SELECT ` + headerCols + `, ` + fmt.Sprintf(notLater, 3) + ` FROM journal j
		WHERE j.practice = $1 AND j.patient = '' AND j.seq > $2 AND j.seq <= $3
		ORDER BY j.seq LIMIT $4`
	// digestPatientSQL pages through the rows at or below $4 of the
	// resources in a compartment, ordered by patient then seq, through
	// journal_patient, saying of each whether it is its resource's state at
	// $4; the cursor is the last (patient, seq) read: practice, cursor
	// patient, cursor seq, at, limit. The latest-state test is a column,
	// not a filter: as a filter the planner cannot estimate it and sorts
	// every remaining row of the practice for each page instead of walking
	// the index.
	digestPatientSQL = `SELECT ` + headerCols + `, ` + fmt.Sprintf(notLater, 4) + ` FROM journal j
		WHERE j.practice = $1 AND j.patient <> '' AND (j.patient, j.seq) > ($2, $3) AND j.seq <= $4
		ORDER BY j.patient, j.seq LIMIT $5`
	// compartmentSQL pages through a patient's live resources: practice,
	// patient, cursor, at, limit.
	compartmentSQL = `SELECT ` + changeCols + ` FROM journal j
		WHERE j.practice = $1 AND j.patient = $2 AND j.patient <> '' AND j.seq > $3 AND j.seq <= $4
		AND j.op = 0 AND ` + fmt.Sprintf(notLater, 4) + `
		ORDER BY j.seq LIMIT $5`
	// stateSQL selects a resource's latest change at or before a seq:
	// practice, type, id, at.
	stateSQL = `SELECT ` + changeCols + ` FROM journal j
		WHERE j.practice = $1 AND j.type = $2 AND j.id = $3 AND j.seq <= $4
		ORDER BY j.seq DESC LIMIT 1`
	// countsDeltaSQL yields, for every resource changed in ($2, $3], its
	// type and +1 if it was live at $2 minus 1 if it is live at $3:
	// practice, at, head.
	countsDeltaSQL = `SELECT j.type,
		(CASE WHEN coalesce((SELECT k.op FROM journal k WHERE k.practice = j.practice AND k.type = j.type
			AND k.id = j.id AND k.seq <= $2 ORDER BY k.seq DESC LIMIT 1), 1) = 0 THEN 1 ELSE 0 END)
		- (CASE WHEN j.op = 0 THEN 1 ELSE 0 END)
		FROM journal j WHERE j.practice = $1 AND j.seq > $2 AND j.seq <= $3 AND ` + fmt.Sprintf(notLater, 3)
)

// Head returns the latest committed snapshot (the zero Snapshot for an empty
// store). Every change with a lower or equal Seq is committed and visible.
func (db *DB) Head(ctx context.Context) (dtm.Snapshot, error) {
	s, err := readHead(ctx, db.pool, "")
	if err != nil {
		return dtm.Snapshot{}, fmt.Errorf("head: %w", err)
	}
	return s, nil
}

// querier is a *pgxpool.Pool, *pgxpool.Conn or pgx.Tx.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readHead reads the head row, followed by suffix (" FOR UPDATE" to lock it).
func readHead(ctx context.Context, q querier, suffix string) (dtm.Snapshot, error) {
	var seq, us int64
	if err := q.QueryRow(ctx, `SELECT seq, time_us FROM head WHERE id = 1`+suffix).Scan(&seq, &us); err != nil {
		return dtm.Snapshot{}, err
	}
	return dtm.Snapshot{Seq: seq, Time: fromMicros(us)}, nil
}

// SnapshotAt returns the snapshot after the last commit at or before t, or
// the zero Snapshot when there is none. For t after the latest commit it
// returns Head, which later commits may extend: map only past instants.
func (db *DB) SnapshotAt(ctx context.Context, t time.Time) (dtm.Snapshot, error) {
	var seq, us int64
	err := db.pool.QueryRow(ctx, `SELECT seq, time_us FROM commits WHERE time_us <= $1
		ORDER BY time_us DESC LIMIT 1`, t.UnixMicro()).Scan(&seq, &us)
	if errors.Is(err, pgx.ErrNoRows) {
		return dtm.Snapshot{}, nil
	} else if err != nil {
		return dtm.Snapshot{}, fmt.Errorf("snapshot at: %w", err)
	}
	return dtm.Snapshot{Seq: seq, Time: fromMicros(us)}, nil
}

// Changes calls fn, in Seq order, with the state at q.Until of every resource
// of q.Practice (and q.Type, when set) whose latest change at or before
// q.Until has Seq in (q.Since, q.Until]. q.Until is capped at Head. The cost
// grows with the number of changes in the range, not with the practice's
// size. It returns fn's error unwrapped when fn fails.
func (db *DB) Changes(ctx context.Context, q dtm.ChangeQuery, fn func(dtm.Change) error) error {
	head, err := db.Head(ctx)
	if err != nil {
		return fmt.Errorf("changes: %w", err)
	}
	until := min(q.Until, head.Seq)
	var query string
	var args func(cursor int64) []any
	if q.Type != "" {
		query = changesTypeSQL
		args = func(c int64) []any { return []any{q.Practice, q.Type, c, until, pageSize} }
	} else {
		query = changesAllSQL
		args = func(c int64) []any { return []any{q.Practice, c, until, pageSize} }
	}
	return db.pages(ctx, query, q.Since, until, args, fn)
}

// ChangeHeaders is Changes without the resource bodies: every Change has
// a nil JSON and everything else as Changes reports it (bulk.HeaderLister).
// Export planning and digests use it; the bodies are most of the journal.
func (db *DB) ChangeHeaders(ctx context.Context, q dtm.ChangeQuery, fn func(dtm.Change) error) error {
	head, err := db.Head(ctx)
	if err != nil {
		return fmt.Errorf("change headers: %w", err)
	}
	until := min(q.Until, head.Seq)
	if q.Type != "" {
		return db.pages(ctx, headersTypeSQL, q.Since, until, func(c int64) []any {
			return []any{q.Practice, q.Type, c, until, pageSize}
		}, fn)
	}
	return db.pages(ctx, headersAllSQL, q.Since, until, func(c int64) []any {
		return []any{q.Practice, c, until, pageSize}
	}, fn)
}

// Compartment calls fn, in Seq order, with the state at seq `at` (capped at
// Head) of every live resource in the patient's compartment, the Patient
// resource itself included. It returns fn's error unwrapped when fn fails.
func (db *DB) Compartment(ctx context.Context, practice, patient string, at int64, fn func(dtm.Change) error) error {
	if patient == "" {
		return nil
	}
	head, err := db.Head(ctx)
	if err != nil {
		return fmt.Errorf("compartment: %w", err)
	}
	at = min(at, head.Seq)
	args := func(c int64) []any { return []any{practice, patient, c, at, pageSize} }
	return db.pages(ctx, compartmentSQL, 0, at, args, fn)
}

// pages runs query page by page from cursor since, calling fn on each row.
func (db *DB) pages(ctx context.Context, query string, since, until int64, args func(cursor int64) []any, fn func(dtm.Change) error) error {
	cursor := since
	page := make([]dtm.Change, 0, pageSize)
	for cursor < until {
		rows, err := db.pool.Query(ctx, query, args(cursor)...)
		if err != nil {
			return fmt.Errorf("read journal: %w", err)
		}
		page, err = pgx.AppendRows(page[:0], rows, scanChange)
		if err != nil {
			return fmt.Errorf("read journal: %w", err)
		}
		for _, c := range page {
			if err := fn(c); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		cursor = page[len(page)-1].Seq
	}
	return nil
}

func scanChange(row pgx.CollectableRow) (dtm.Change, error) {
	var c dtm.Change
	var us int64
	var op int16
	if err := row.Scan(&c.Seq, &c.Practice, &c.Type, &c.ID, &c.Version, &op, &us,
		&c.Patient, &c.Member, &c.Hash, &c.JSON); err != nil {
		return dtm.Change{}, err
	}
	c.Op = dtm.Op(op)
	c.CommitTime = fromMicros(us)
	return c, nil
}

// queryChange returns the one change query selects, or pgx.ErrNoRows.
func (db *DB) queryChange(ctx context.Context, query string, args ...any) (dtm.Change, error) {
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return dtm.Change{}, err
	}
	return pgx.CollectExactlyOneRow(rows, scanChange)
}

// State returns the latest change of one resource at or before seq `at`,
// which may be a delete, or an ENotFound error when it had none by then.
func (db *DB) State(ctx context.Context, practice, typ, id string, at int64) (dtm.Change, error) {
	c, err := db.queryChange(ctx, stateSQL, practice, typ, id, at)
	if errors.Is(err, pgx.ErrNoRows) {
		return dtm.Change{}, dtm.Errorf(dtm.ENotFound, "%s/%s not found", typ, id)
	} else if err != nil {
		return dtm.Change{}, fmt.Errorf("state: %w", err)
	}
	return c, nil
}

// Get returns the current version of one resource, or an ENotFound error
// when it does not exist or is deleted.
func (db *DB) Get(ctx context.Context, practice, typ, id string) (dtm.Change, error) {
	c, err := db.queryChange(ctx, `SELECT `+changeCols+` FROM journal j
		WHERE j.practice = $1 AND j.type = $2 AND j.id = $3
		ORDER BY j.seq DESC LIMIT 1`, practice, typ, id)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && c.Op == dtm.OpDelete) {
		return dtm.Change{}, dtm.Errorf(dtm.ENotFound, "%s/%s not found", typ, id)
	} else if err != nil {
		return dtm.Change{}, fmt.Errorf("get: %w", err)
	}
	return c, nil
}

// Counts returns the number of live resources per type at seq `at` (capped
// at Head); types with none are absent. At Head it reads the maintained
// counts; at an earlier seq it corrects them by the changes after `at`, so
// its cost grows with the number of those changes.
func (db *DB) Counts(ctx context.Context, practice string, at int64) (map[string]int64, error) {
	counts := make(map[string]int64)
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		head, err := readHead(ctx, tx, "") // fixes the read snapshot
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT type, live FROM counts WHERE practice = $1`, practice)
		if err != nil {
			return err
		}
		if err := scanCounts(rows, counts); err != nil {
			return err
		}
		if at >= head.Seq {
			return nil
		}
		rows, err = tx.Query(ctx, countsDeltaSQL, practice, max(at, 0), head.Seq)
		if err != nil {
			return err
		}
		return scanCounts(rows, counts)
	})
	if err != nil {
		return nil, fmt.Errorf("counts: %w", err)
	}
	maps.DeleteFunc(counts, func(_ string, n int64) bool { return n <= 0 })
	return counts, nil
}

// scanCounts adds (type, n) rows to counts and closes rows.
func scanCounts(rows pgx.Rows, counts map[string]int64) error {
	var typ string
	var n int64
	_, err := pgx.ForEachRow(rows, []any{&typ, &n}, func() error {
		counts[typ] += n
		return nil
	})
	return err
}

// digestPageSize is how many rows DigestChanges reads per query: a digest
// reads the whole practice, so its pages are larger than Changes's.
const digestPageSize = 5000

var _ dtm.DigestLister = (*DB)(nil)

// DigestChanges implements dtm.DigestLister. It calls fn with the state at
// seq `at` (capped at Head) of every resource of the practice that has one,
// deletes included, ordered by Change.Patient bytewise (the resources in no
// compartment first, then each patient's compartment in Seq order), with
// JSON nil. It reads no resource body: the content hash and compartment
// patient are stored columns, the no-compartment rows come from the index
// journal_nopatient and the others through journal_patient. The next page
// is read on another goroutine while fn handles the current one; no
// connection is held between pages (rows at or below a committed snapshot
// never change). It returns fn's error unwrapped when fn fails.
func (db *DB) DigestChanges(ctx context.Context, practice string, at int64, fn func(dtm.Change) error) error {
	head, err := db.Head(ctx)
	if err != nil {
		return fmt.Errorf("digest changes: %w", err)
	}
	at = min(at, head.Seq)
	if at <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan []dtm.Change, 1)
	done := make(chan error, 1)
	go func() {
		defer close(pages)
		done <- db.digestPages(ctx, practice, at, pages)
	}()
	for page := range pages {
		for _, c := range page {
			if err := fn(c); err != nil {
				cancel()
				for range pages { // let the reader finish
				}
				<-done
				return err
			}
		}
	}
	if err := <-done; err != nil {
		return fmt.Errorf("digest changes: %w", err)
	}
	return nil
}

// digestPages sends DigestChanges's rows to out page by page: the
// no-compartment rows by seq, then the compartment rows by (patient, seq).
func (db *DB) digestPages(ctx context.Context, practice string, at int64, out chan<- []dtm.Change) error {
	ds := newDigestScanner()
	// read runs one page's query and sends its latest states; it returns
	// the number of rows read and the last one.
	read := func(query string, args ...any) (int, dtm.Change, error) {
		rows, err := db.pool.Query(ctx, query, args...)
		if err != nil {
			return 0, dtm.Change{}, err
		}
		var page []dtm.Change
		var last dtm.Change
		n := 0
		for rows.Next() {
			c, latest, err := ds.scan(rows)
			if err != nil {
				rows.Close()
				return 0, dtm.Change{}, err
			}
			n, last = n+1, c
			if latest {
				page = append(page, c)
			}
		}
		if err := rows.Err(); err != nil {
			return 0, dtm.Change{}, err
		}
		if len(page) > 0 {
			select {
			case out <- page:
			case <-ctx.Done():
				return 0, dtm.Change{}, ctx.Err()
			}
		}
		return n, last, nil
	}
	for cursor := int64(0); ; {
		n, last, err := read(digestNoPatientSQL, practice, cursor, at, digestPageSize)
		if err != nil {
			return err
		}
		if n < digestPageSize {
			break
		}
		cursor = last.Seq
	}
	for patient, seq := "", int64(0); ; {
		n, last, err := read(digestPatientSQL, practice, patient, seq, at, digestPageSize)
		if err != nil {
			return err
		}
		if n < digestPageSize {
			return nil
		}
		patient, seq = last.Patient, last.Seq
	}
}

// digestScanner reads rows of headerCols followed by the latest-state
// flag, reusing its scan destinations: a Change passed to Scan by pointer
// would be a heap allocation per row. It is not safe for concurrent use.
type digestScanner struct {
	c      dtm.Change
	us     int64
	op     int16
	latest bool
	dest   []any
}

func newDigestScanner() *digestScanner {
	d := &digestScanner{}
	d.dest = []any{&d.c.Seq, &d.c.Practice, &d.c.Type, &d.c.ID, &d.c.Version, &d.op, &d.us,
		&d.c.Patient, &d.c.Member, &d.c.Hash, &d.c.JSON, &d.latest}
	return d
}

// scan reads one row and returns it with whether it is its resource's
// state at the snapshot.
func (d *digestScanner) scan(rows pgx.Rows) (dtm.Change, bool, error) {
	if err := rows.Scan(d.dest...); err != nil {
		return dtm.Change{}, false, err
	}
	c := d.c
	c.Op = dtm.Op(d.op)
	c.CommitTime = fromMicros(d.us)
	return c, d.latest, nil
}
