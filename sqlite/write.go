package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/dtm-project/dtm"
)

// insertChunk is how many journal rows one INSERT statement carries.
const insertChunk = 100

// journalColumns is the number of columns insertRows binds per row.
const journalColumns = 11

// Apply commits the writes for one practice as one atomic batch and returns
// the snapshot after it (or Head, when every write was skipped). See
// dtm.Journal for the skip rules. A later write to a resource already
// written in the same batch is applied after it, with the next version.
// It returns an EInvalid error for a malformed write (checked before any
// lock is taken), ENotFound for an unknown practice and EFrozen for a frozen
// one. Apply holds the database's write lock from its first read to its
// commit: commits are serialised, so seq order is commit order and commit
// times strictly increase with seq.
func (db *DB) Apply(ctx context.Context, practice string, writes []dtm.Write) (dtm.Commit, error) {
	ps, err := prepare(writes)
	if err != nil {
		return dtm.Commit{}, err
	}
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
	cur, err := readStates(ctx, tx, practice, ps)
	if err != nil {
		return dtm.Commit{}, fmt.Errorf("apply: %w", err)
	}
	rows, skipped, live := plan(ps, cur, head.Seq)
	if len(rows) == 0 {
		return dtm.Commit{Snapshot: head, Skipped: skipped}, nil
	}
	us := max(db.clock.Now().UnixMicro(), toMicros(head.Time)+1)
	commit := dtm.Snapshot{Seq: rows[len(rows)-1].seq, Time: fromMicros(us)}
	if err := stamp(rows, commit.Time); err != nil {
		return dtm.Commit{}, err
	}
	if err := insertRows(ctx, tx, practice, us, rows); err != nil {
		return dtm.Commit{}, fmt.Errorf("apply: %w", err)
	}
	if err := finish(ctx, tx, practice, commit, live); err != nil {
		return dtm.Commit{}, fmt.Errorf("apply: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return dtm.Commit{}, fmt.Errorf("apply: commit: %w", err)
	}
	return dtm.Commit{Snapshot: commit, Applied: len(rows), Skipped: skipped}, nil
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

// readStates returns the latest journal row of every resource the batch
// writes that has one.
func readStates(ctx context.Context, tx *sql.Tx, practice string, ps []prepared) (map[key]state, error) {
	stmt, err := tx.PrepareContext(ctx, `SELECT version, op, hash, patient FROM journal
		WHERE practice = ? AND type = ? AND id = ? ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	cur := make(map[key]state, len(ps))
	seen := make(map[key]bool, len(ps))
	for _, w := range ps {
		k := key{w.Type, w.ID}
		if seen[k] {
			continue
		}
		seen[k] = true
		var st state
		err := stmt.QueryRowContext(ctx, practice, k.typ, k.id).Scan(&st.version, &st.op, &st.hash, &st.patient)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return nil, err
		}
		cur[k] = st
	}
	return cur, nil
}

// insertRows appends rows to the journal, insertChunk rows per statement.
func insertRows(ctx context.Context, tx *sql.Tx, practice string, us int64, rows []row) error {
	var full *sql.Stmt
	args := make([]any, 0, insertChunk*journalColumns)
	for len(rows) > 0 {
		n := min(len(rows), insertChunk)
		args = args[:0]
		for _, r := range rows[:n] {
			var js any
			if r.op == dtm.OpUpsert {
				js = r.json
			}
			args = append(args, r.seq, practice, r.typ, r.id, r.version, int64(r.op), us, r.patient, r.member, r.hash, js)
		}
		var err error
		if n == insertChunk {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, insertSQL(insertChunk)); err != nil {
					return err
				}
				defer full.Close()
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertSQL(n), args...)
		}
		if err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
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
