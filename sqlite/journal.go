package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/dtm-project/dtm"
)

// pageSize is how many journal rows Changes and Compartment read per query.
// Between pages no connection or transaction is held, so a slow fn (writing
// to an HTTP response) blocks neither writers nor WAL checkpoints. Paging is
// exact because rows at or below a committed snapshot never change.
const pageSize = 500

// changeCols are the journal columns scanChange reads, prefixed for alias j.
const changeCols = `j.seq, j.practice, j.type, j.id, j.version, j.op, j.commit_us, j.patient, j.member, j.hash, j.json`

// headerCols are the journal columns a headerScanner reads: changeCols
// without the resource body (SQLite then reads neither the body nor its
// overflow pages) and without the practice, which the caller knows. Every
// column costs the pure-Go driver a call under the connection's mutex.
const headerCols = `j.seq, j.type, j.id, j.version, j.op, j.commit_us, j.patient, j.member, j.hash`

// notLater is true for a journal row j that is its resource's latest change
// at or before the seq bound to its one parameter.
const notLater = `NOT EXISTS (SELECT 1 FROM journal k WHERE k.practice = j.practice AND k.type = j.type
	AND k.id = j.id AND k.seq > j.seq AND k.seq <= ?)`

// The journal queries. TestDB_QueryPlans checks their plans.
const (
	// changesTypeSQL pages through one type's changes in (?, ?]:
	// practice, type, cursor, until, until, limit.
	changesTypeSQL  = `SELECT ` + changeCols + changesTypeFrom
	changesTypeFrom = ` FROM journal j
		WHERE j.practice = ? AND j.type = ? AND j.seq > ? AND j.seq <= ? AND ` + notLater + `
		ORDER BY j.seq LIMIT ?`
	// changesAllSQL pages through every type's changes: practice, cursor,
	// until, until, limit. The unary + keeps SQLite from walking the
	// practice's part of an index: the rowid (seq) range bounds the cost.
	changesAllSQL  = `SELECT ` + changeCols + changesAllFrom
	changesAllFrom = ` FROM journal j
		WHERE +j.practice = ? AND j.seq > ? AND j.seq <= ? AND ` + notLater + `
		ORDER BY j.seq LIMIT ?`
	// headersTypeSQL and headersAllSQL are changesTypeSQL and changesAllSQL
	// without the bodies (ChangeHeaders).
	headersTypeSQL = `SELECT ` + headerCols + changesTypeFrom
	headersAllSQL  = `SELECT ` + headerCols + changesAllFrom
	// digestNoPatientSQL pages through the latest states at `at` of the
	// resources in no compartment, from the covering index
	// journal_nopatient: practice, cursor, at, at, limit.
	digestNoPatientSQL = `SELECT ` + headerCols + ` FROM journal j
		WHERE j.practice = ? AND j.patient = '' AND j.seq > ? AND j.seq <= ? AND ` + notLater + `
		ORDER BY j.seq LIMIT ?`
	// digestPatientSQL pages through the latest states at `at` of the
	// resources in a compartment, ordered by patient then seq, through
	// journal_patient; the cursor is the last (patient, seq) read:
	// practice, cursor patient, cursor seq, at, at, limit.
	digestPatientSQL = `SELECT ` + headerCols + ` FROM journal j
		WHERE j.practice = ? AND j.patient <> '' AND (j.patient, j.seq) > (?, ?) AND j.seq <= ?
		AND ` + notLater + `
		ORDER BY j.patient, j.seq LIMIT ?`
	// compartmentSQL pages through a patient's live resources: practice,
	// patient, cursor, at, at, limit.
	compartmentSQL = `SELECT ` + changeCols + ` FROM journal j
		WHERE j.practice = ? AND j.patient = ? AND j.patient <> '' AND j.seq > ? AND j.seq <= ?
		AND j.op = 0 AND ` + notLater + `
		ORDER BY j.seq LIMIT ?`
	// stateSQL selects a resource's latest change at or before a seq:
	// practice, type, id, at.
	stateSQL = `SELECT ` + changeCols + ` FROM journal j
		WHERE j.practice = ? AND j.type = ? AND j.id = ? AND j.seq <= ?
		ORDER BY j.seq DESC LIMIT 1`
	// countsDeltaSQL yields, for every resource changed in (at, head],
	// its type and +1 if it was live at `at` minus 1 if it is live at head:
	// at, practice, at, head, head.
	countsDeltaSQL = `SELECT j.type,
		(CASE WHEN coalesce((SELECT k.op FROM journal k WHERE k.practice = j.practice AND k.type = j.type
			AND k.id = j.id AND k.seq <= ? ORDER BY k.seq DESC LIMIT 1), 1) = 0 THEN 1 ELSE 0 END)
		- (CASE WHEN j.op = 0 THEN 1 ELSE 0 END)
		FROM journal j WHERE +j.practice = ? AND j.seq > ? AND j.seq <= ? AND ` + notLater
)

// Head returns the latest committed snapshot (the zero Snapshot for an empty
// store). Every change with a lower or equal Seq is committed and visible.
func (db *DB) Head(ctx context.Context) (dtm.Snapshot, error) {
	s, err := readHead(ctx, db.r)
	if err != nil {
		return dtm.Snapshot{}, fmt.Errorf("head: %w", err)
	}
	return s, nil
}

// querier is a *sql.DB, *sql.Tx or *sql.Conn.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func readHead(ctx context.Context, q querier) (dtm.Snapshot, error) {
	var seq, us int64
	if err := q.QueryRowContext(ctx, `SELECT seq, time_us FROM head WHERE id = 1`).Scan(&seq, &us); err != nil {
		return dtm.Snapshot{}, err
	}
	return dtm.Snapshot{Seq: seq, Time: fromMicros(us)}, nil
}

// SnapshotAt returns the snapshot after the last commit at or before t, or
// the zero Snapshot when there is none. For t after the latest commit it
// returns Head, which later commits may extend: map only past instants.
func (db *DB) SnapshotAt(ctx context.Context, t time.Time) (dtm.Snapshot, error) {
	var seq, us int64
	err := db.r.QueryRowContext(ctx, `SELECT seq, time_us FROM commits WHERE time_us <= ?
		ORDER BY time_us DESC LIMIT 1`, t.UnixMicro()).Scan(&seq, &us)
	if errors.Is(err, sql.ErrNoRows) {
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
		args = func(c int64) []any { return []any{q.Practice, q.Type, c, until, until, pageSize} }
	} else {
		query = changesAllSQL
		args = func(c int64) []any { return []any{q.Practice, c, until, until, pageSize} }
	}
	return db.pages(ctx, query, q.Since, until, args, scanChange, fn)
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
			return []any{q.Practice, q.Type, c, until, until, pageSize}
		}, newHeaderScanner(q.Practice).scan, fn)
	}
	return db.pages(ctx, headersAllSQL, q.Since, until, func(c int64) []any {
		return []any{q.Practice, c, until, until, pageSize}
	}, newHeaderScanner(q.Practice).scan, fn)
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
	args := func(c int64) []any { return []any{practice, patient, c, at, at, pageSize} }
	return db.pages(ctx, compartmentSQL, 0, at, args, scanChange, fn)
}

// pages runs query page by page from cursor since, reading each row with
// scan and calling fn on it.
func (db *DB) pages(ctx context.Context, query string, since, until int64, args func(cursor int64) []any,
	scan func(scanner) (dtm.Change, error), fn func(dtm.Change) error) error {
	cursor := since
	page := make([]dtm.Change, 0, pageSize)
	for cursor < until {
		page = page[:0]
		rows, err := db.r.QueryContext(ctx, query, args(cursor)...)
		if err != nil {
			return fmt.Errorf("read journal: %w", err)
		}
		for rows.Next() {
			c, err := scan(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("read journal: %w", err)
			}
			page = append(page, c)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("read journal: %w", err)
		}
		if err := rows.Err(); err != nil {
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

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// headerScanner reads rows of headerCols into Changes of one practice,
// reusing its scan destinations: a Change passed to Scan by pointer would
// be a heap allocation per row. It is not safe for concurrent use.
type headerScanner struct {
	c    dtm.Change
	us   int64
	dest []any
}

func newHeaderScanner(practice string) *headerScanner {
	h := &headerScanner{c: dtm.Change{Practice: practice}}
	h.dest = []any{&h.c.Seq, &h.c.Type, &h.c.ID, &h.c.Version, &h.c.Op, &h.us, &h.c.Patient, &h.c.Member, &h.c.Hash}
	return h
}

func (h *headerScanner) scan(s scanner) (dtm.Change, error) {
	if err := s.Scan(h.dest...); err != nil {
		return dtm.Change{}, err
	}
	c := h.c
	c.CommitTime = fromMicros(h.us)
	return c, nil
}

func scanChange(s scanner) (dtm.Change, error) {
	var c dtm.Change
	var us int64
	if err := s.Scan(&c.Seq, &c.Practice, &c.Type, &c.ID, &c.Version, &c.Op, &us,
		&c.Patient, &c.Member, &c.Hash, &c.JSON); err != nil {
		return dtm.Change{}, err
	}
	c.CommitTime = fromMicros(us)
	return c, nil
}

// State returns the latest change of one resource at or before seq `at`,
// which may be a delete, or an ENotFound error when it had none by then.
func (db *DB) State(ctx context.Context, practice, typ, id string, at int64) (dtm.Change, error) {
	c, err := scanChange(db.r.QueryRowContext(ctx, stateSQL, practice, typ, id, at))
	if errors.Is(err, sql.ErrNoRows) {
		return dtm.Change{}, dtm.Errorf(dtm.ENotFound, "%s/%s not found", typ, id)
	} else if err != nil {
		return dtm.Change{}, fmt.Errorf("state: %w", err)
	}
	return c, nil
}

// Get returns the current version of one resource, or an ENotFound error
// when it does not exist or is deleted.
func (db *DB) Get(ctx context.Context, practice, typ, id string) (dtm.Change, error) {
	c, err := scanChange(db.r.QueryRowContext(ctx, `SELECT `+changeCols+` FROM journal j
		WHERE j.practice = ? AND j.type = ? AND j.id = ?
		ORDER BY j.seq DESC LIMIT 1`, practice, typ, id))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && c.Op == dtm.OpDelete) {
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
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("counts: %w", err)
	}
	defer tx.Rollback()
	head, err := readHead(ctx, tx) // fixes the read snapshot
	if err != nil {
		return nil, fmt.Errorf("counts: %w", err)
	}
	counts := make(map[string]int64)
	rows, err := tx.QueryContext(ctx, `SELECT type, live FROM counts WHERE practice = ?`, practice)
	if err != nil {
		return nil, fmt.Errorf("counts: %w", err)
	}
	if err := scanCounts(rows, counts); err != nil {
		return nil, fmt.Errorf("counts: %w", err)
	}
	if at < head.Seq {
		rows, err := tx.QueryContext(ctx, countsDeltaSQL, max(at, 0), practice, max(at, 0), head.Seq, head.Seq)
		if err != nil {
			return nil, fmt.Errorf("counts: %w", err)
		}
		if err := scanCounts(rows, counts); err != nil {
			return nil, fmt.Errorf("counts: %w", err)
		}
	}
	maps.DeleteFunc(counts, func(_ string, n int64) bool { return n <= 0 })
	return counts, nil
}

// scanCounts adds (type, n) rows to counts and closes rows.
func scanCounts(rows *sql.Rows, counts map[string]int64) error {
	defer rows.Close()
	for rows.Next() {
		var typ string
		var n int64
		if err := rows.Scan(&typ, &n); err != nil {
			return err
		}
		counts[typ] += n
	}
	return rows.Err()
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
// patient are stored columns, the no-compartment rows come from the
// covering index journal_nopatient and the others through journal_patient.
// The next page is read on another goroutine while fn handles the current
// one; no transaction is held between pages (rows at or below a committed
// snapshot never change). It returns fn's error unwrapped when fn fails.
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
	// Three page buffers circulate: one being read, one waiting, one
	// with fn.
	free := make(chan []dtm.Change, 3)
	for range 3 {
		free <- make([]dtm.Change, 0, digestPageSize)
	}
	pages := make(chan []dtm.Change, 1)
	done := make(chan error, 1)
	go func() {
		defer close(pages)
		done <- db.digestPages(ctx, practice, at, free, pages)
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
		free <- page[:0]
	}
	if err := <-done; err != nil {
		return fmt.Errorf("digest changes: %w", err)
	}
	return nil
}

// digestPages sends DigestChanges's rows to out page by page, in buffers
// taken from free: the no-compartment rows by seq, then the compartment
// rows by (patient, seq).
func (db *DB) digestPages(ctx context.Context, practice string, at int64, free chan []dtm.Change, out chan<- []dtm.Change) error {
	hs := newHeaderScanner(practice)
	// read runs one page's query and sends its rows; it returns the last.
	read := func(stmt *sql.Stmt, args ...any) (n int, last dtm.Change, err error) {
		var page []dtm.Change
		select {
		case page = <-free:
		case <-ctx.Done():
			return 0, last, ctx.Err()
		}
		rows, err := stmt.QueryContext(ctx, args...)
		if err != nil {
			return 0, last, err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := hs.scan(rows)
			if err != nil {
				return 0, last, err
			}
			page = append(page, c)
		}
		if err := rows.Err(); err != nil {
			return 0, last, err
		}
		if len(page) == 0 {
			free <- page // back where it came from: never blocks
			return 0, last, nil
		}
		select {
		case out <- page:
		case <-ctx.Done():
			return 0, last, ctx.Err()
		}
		return len(page), page[len(page)-1], nil
	}
	noPatient, err := db.r.PrepareContext(ctx, digestNoPatientSQL)
	if err != nil {
		return err
	}
	defer noPatient.Close()
	for cursor := int64(0); ; {
		n, last, err := read(noPatient, practice, cursor, at, at, digestPageSize)
		if err != nil {
			return err
		}
		if n < digestPageSize {
			break
		}
		cursor = last.Seq
	}
	inCompartment, err := db.r.PrepareContext(ctx, digestPatientSQL)
	if err != nil {
		return err
	}
	defer inCompartment.Close()
	for patient, seq := "", int64(0); ; {
		n, last, err := read(inCompartment, practice, patient, seq, at, at, digestPageSize)
		if err != nil {
			return err
		}
		if n < digestPageSize {
			return nil
		}
		patient, seq = last.Patient, last.Seq
	}
}
