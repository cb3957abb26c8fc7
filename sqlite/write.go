package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/internal/batch"
)

// chunkSize is how many writes Apply plans and inserts at a time (one INSERT
// statement), overlapping the hashing and stamping of neighbouring chunks.
const chunkSize = 100

// journalColumns is the number of columns insert binds per row.
const journalColumns = 11

// Apply commits the writes for one practice as one atomic batch and returns
// the snapshot after it (or Head, when every write was skipped). See
// dtm.Journal for the skip rules. A later write to a resource already
// written in the same batch is applied after it, with the next version.
// It returns an EInvalid error for a malformed write, ENotFound for an
// unknown practice and EFrozen for a frozen one; nothing is committed then.
//
// Apply holds the database's write lock (BEGIN IMMEDIATE) from its first
// read to its commit: commits are serialised store-wide, so seq order is
// commit order and commit times strictly increase with seq. Content hashes
// are computed on other goroutines, starting before the lock is taken.
func (db *DB) Apply(ctx context.Context, practice string, writes []dtm.Write) (dtm.Commit, error) {
	c, err := db.apply(ctx, practice, writes)
	return c, db.storageError(err)
}

// apply is Apply without the mapping of storage failures (storageError).
func (db *DB) apply(ctx context.Context, practice string, writes []dtm.Write) (dtm.Commit, error) {
	ps, err := batch.Check(writes)
	if err != nil {
		return dtm.Commit{}, err
	}
	h := batch.StartHashing(ps, chunkSize)
	defer h.Halt()
	tx, err := db.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the store-wide write lock
	if err != nil {
		return dtm.Commit{}, fmt.Errorf("apply: %w", err)
	}
	defer tx.Rollback()
	head, err := readHead(ctx, tx)
	if err != nil {
		return dtm.Commit{}, fmt.Errorf("apply: %w", err)
	}
	if err := checkWritable(ctx, tx, practice); err != nil {
		return dtm.Commit{}, err
	}
	us := max(db.clock.Now().UnixMicro(), toMicros(head.Time)+1)
	jw := &txWriter{tx: tx, practice: practice, us: us}
	defer jw.close()
	res, err := batch.ApplyChunks(ctx, jw, ps, h, head.Seq, fromMicros(us))
	if err != nil {
		if dtm.ErrorCode(err) == dtm.EInvalid {
			return dtm.Commit{}, err
		}
		return dtm.Commit{}, fmt.Errorf("apply: %w", err)
	}
	if res.Applied == 0 {
		return dtm.Commit{Snapshot: head, Skipped: res.Skipped}, nil
	}
	commit := dtm.Snapshot{Seq: head.Seq + int64(res.Applied), Time: fromMicros(us)}
	if err := finish(ctx, tx, practice, commit, res.Live); err != nil {
		return dtm.Commit{}, fmt.Errorf("apply: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return dtm.Commit{}, fmt.Errorf("apply: commit: %w", err)
	}
	return dtm.Commit{Snapshot: commit, Applied: res.Applied, Skipped: res.Skipped}, nil
}

// checkWritable returns ENotFound for an unknown practice and EFrozen for a
// frozen one.
func checkWritable(ctx context.Context, tx *sql.Tx, practice string) error {
	var frozen bool
	err := tx.QueryRowContext(ctx, `SELECT frozen FROM practices WHERE ods = ?`, practice).Scan(&frozen)
	if errors.Is(err, sql.ErrNoRows) {
		return dtm.Errorf(dtm.ENotFound, "practice %s not found", practice)
	} else if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if frozen {
		return dtm.Errorf(dtm.EFrozen, "practice %s is frozen", practice)
	}
	return nil
}

// txWriter is the batch.Writer of one Apply transaction.
type txWriter struct {
	tx       *sql.Tx
	practice string
	us       int64             // commit time
	full     *sql.Stmt         // INSERT of chunkSize rows
	states   map[int]*sql.Stmt // SELECT of the states of n ids, by n
	args     []any
}

func (w *txWriter) close() {
	if w.full != nil {
		w.full.Close()
	}
	for _, st := range w.states {
		st.Close()
	}
}

// statesStmt returns the transaction's prepared statesSQL(n), preparing it
// on first use: a batch of one type looks up chunkSize ids at a time, and
// preparing the statement again for every chunk cost about as much as
// running it.
func (w *txWriter) statesStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if st := w.states[n]; st != nil {
		return st, nil
	}
	st, err := w.tx.PrepareContext(ctx, statesSQL(n))
	if err != nil {
		return nil, err
	}
	if w.states == nil {
		w.states = make(map[int]*sql.Stmt)
	}
	w.states[n] = st
	return st, nil
}

// States looks the keys up with one statement per resource type: for each
// id, SQLite's max() picks the row with the highest seq, and the other bare
// columns come from that row.
func (w *txWriter) States(ctx context.Context, keys []batch.Key) (map[batch.Key]batch.State, error) {
	byType := make(map[string][]any)
	for _, k := range keys {
		byType[k.Type] = append(byType[k.Type], k.ID)
	}
	cur := make(map[batch.Key]batch.State, len(keys))
	for typ, ids := range byType {
		stmt, err := w.statesStmt(ctx, len(ids))
		if err != nil {
			return nil, err
		}
		rows, err := stmt.QueryContext(ctx, append([]any{w.practice, typ}, ids...)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var seq int64
			var st batch.State
			if err := rows.Scan(&id, &seq, &st.Version, &st.Op, &st.Hash, &st.Patient); err != nil {
				rows.Close()
				return nil, err
			}
			cur[batch.Key{Type: typ, ID: id}] = st
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

func (w *txWriter) Insert(ctx context.Context, rows []batch.Row) error {
	if len(rows) == 0 {
		return nil
	}
	w.args = w.args[:0]
	for _, r := range rows {
		var js any
		if r.Op == dtm.OpUpsert {
			js = r.JSON
		}
		w.args = append(w.args, r.Seq, w.practice, r.Type, r.ID, r.Version, int64(r.Op), w.us, r.Patient, r.Member, r.Hash, js)
	}
	if len(rows) != chunkSize {
		_, err := w.tx.ExecContext(ctx, insertSQL(len(rows)), w.args...)
		return err
	}
	if w.full == nil {
		var err error
		if w.full, err = w.tx.PrepareContext(ctx, insertSQL(chunkSize)); err != nil {
			return err
		}
	}
	_, err := w.full.ExecContext(ctx, w.args...)
	return err
}

// statesSQL returns the query of states for n ids: practice, type, ids.
func statesSQL(n int) string {
	return `SELECT id, max(seq), version, op, hash, patient FROM journal
		WHERE practice = ? AND type = ? AND id IN (?` + strings.Repeat(",?", n-1) + `) GROUP BY id`
}

// insertSQL returns an INSERT of n journal rows.
func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO journal (seq, practice, type, id, version, op, commit_us, patient, member, hash, json) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?,?,?,?,?,?,?,?,?)`)
	}
	return b.String()
}

// finish moves head to commit, records the commit time, adjusts the live
// counts and the practice's last update.
func finish(ctx context.Context, tx *sql.Tx, practice string, commit dtm.Snapshot, live map[string]int64) error {
	us := toMicros(commit.Time)
	if _, err := tx.ExecContext(ctx, `UPDATE head SET seq = ?, time_us = ? WHERE id = 1`, commit.Seq, us); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO commits (time_us, seq) VALUES (?, ?)`, us, commit.Seq); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE practices SET last_updated_us = ? WHERE ods = ?`, us, practice); err != nil {
		return err
	}
	for typ, n := range live {
		if n == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO counts (practice, type, live) VALUES (?, ?, ?)
			ON CONFLICT (practice, type) DO UPDATE SET live = live + excluded.live`, practice, typ, n); err != nil {
			return err
		}
	}
	return nil
}
