package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/internal/batch"
	"github.com/jackc/pgx/v5"
)

// chunkSize is how many writes Apply plans and inserts at a time (one
// states query and one COPY), overlapping the hashing and stamping of
// neighbouring chunks.
const chunkSize = 250

// Apply commits the writes for one practice as one atomic batch and returns
// the snapshot after it (or Head, when every write was skipped). See
// dtm.Journal for the skip rules. A later write to a resource already
// written in the same batch is applied after it, with the next version.
// It returns an EInvalid error for a malformed write, ENotFound for an
// unknown practice and EFrozen for a frozen one; nothing is committed then.
//
// Apply holds the head row lock from its first read to its commit: commits
// are serialised store-wide, so seq order is commit order and commit times
// strictly increase with seq. Content hashes are computed on other
// goroutines, starting before the lock is taken.
func (db *DB) Apply(ctx context.Context, practice string, writes []dtm.Write) (dtm.Commit, error) {
	c, err := db.apply(ctx, practice, writes)
	return c, storageError(err)
}

// apply is Apply without the mapping of storage failures (storageError).
func (db *DB) apply(ctx context.Context, practice string, writes []dtm.Write) (dtm.Commit, error) {
	ps, err := batch.Check(writes)
	if err != nil {
		return dtm.Commit{}, err
	}
	h := batch.StartHashing(ps, chunkSize)
	defer h.Halt()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return dtm.Commit{}, fmt.Errorf("apply: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	head, err := readHead(ctx, tx, " FOR UPDATE") // the store-wide commit lock
	if err != nil {
		return dtm.Commit{}, fmt.Errorf("apply: %w", err)
	}
	if err := checkWritable(ctx, tx, practice); err != nil {
		return dtm.Commit{}, err
	}
	us := max(db.clock.Now().UnixMicro(), toMicros(head.Time)+1)
	res, err := batch.ApplyChunks(ctx, &txWriter{tx: tx, practice: practice, us: us}, ps, h, head.Seq, fromMicros(us))
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
	if err := tx.Commit(ctx); err != nil {
		return dtm.Commit{}, fmt.Errorf("apply: commit: %w", err)
	}
	return dtm.Commit{Snapshot: commit, Applied: res.Applied, Skipped: res.Skipped}, nil
}

// checkWritable returns ENotFound for an unknown practice and EFrozen for a
// frozen one.
func checkWritable(ctx context.Context, tx pgx.Tx, practice string) error {
	var frozen bool
	err := tx.QueryRow(ctx, `SELECT frozen FROM practices WHERE ods = $1`, practice).Scan(&frozen)
	if errors.Is(err, pgx.ErrNoRows) {
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
	tx       pgx.Tx
	practice string
	us       int64 // commit time
}

func (w *txWriter) States(ctx context.Context, keys []batch.Key) (map[batch.Key]batch.State, error) {
	types, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		types[i], ids[i] = k.Type, k.ID
	}
	rows, err := w.tx.Query(ctx, `SELECT r.type, r.id, s.version, s.op, s.hash, s.patient
		FROM unnest($2::text[], $3::text[]) AS r(type, id)
		CROSS JOIN LATERAL (SELECT version, op, hash, patient FROM journal
			WHERE practice = $1 AND type = r.type COLLATE "C" AND id = r.id COLLATE "C"
			ORDER BY seq DESC LIMIT 1) s`, w.practice, types, ids)
	if err != nil {
		return nil, err
	}
	cur := make(map[batch.Key]batch.State, len(keys))
	var k batch.Key
	var st batch.State
	var op int16
	_, err = pgx.ForEachRow(rows, []any{&k.Type, &k.ID, &st.Version, &op, &st.Hash, &st.Patient}, func() error {
		st.Op = dtm.Op(op)
		cur[k] = st
		return nil
	})
	return cur, err
}

// journalCols are the columns Insert copies.
var journalCols = []string{"seq", "practice", "type", "id", "version", "op", "commit_us", "patient", "member", "hash", "json"}

func (w *txWriter) Insert(ctx context.Context, rows []batch.Row) error {
	if len(rows) == 0 {
		return nil
	}
	src := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := rows[i]
		var js []byte
		if r.Op == dtm.OpUpsert {
			js = r.JSON
		}
		return []any{r.Seq, w.practice, r.Type, r.ID, r.Version, int16(r.Op), w.us, r.Patient, r.Member, r.Hash, js}, nil
	})
	n, err := w.tx.CopyFrom(ctx, pgx.Identifier{"journal"}, journalCols, src)
	if err != nil {
		return err
	}
	if n != int64(len(rows)) {
		return fmt.Errorf("copied %d journal rows of %d", n, len(rows))
	}
	return nil
}

// finish moves head to commit, records the commit time, adjusts the live
// counts and the practice's last update, in one round trip.
func finish(ctx context.Context, tx pgx.Tx, practice string, commit dtm.Snapshot, live map[string]int64) error {
	us := toMicros(commit.Time)
	var types []string
	var deltas []int64
	for typ, n := range live {
		if n != 0 {
			types, deltas = append(types, typ), append(deltas, n)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE head SET seq = $1, time_us = $2 WHERE id = 1`, commit.Seq, us)
	b.Queue(`INSERT INTO commits (time_us, seq) VALUES ($1, $2)`, us, commit.Seq)
	b.Queue(`UPDATE practices SET last_updated_us = $1 WHERE ods = $2`, us, practice)
	if len(types) > 0 {
		b.Queue(`INSERT INTO counts (practice, type, live)
			SELECT $1, t, n FROM unnest($2::text[], $3::bigint[]) AS d(t, n)
			ON CONFLICT (practice, type) DO UPDATE SET live = counts.live + excluded.live`, practice, types, deltas)
	}
	return tx.SendBatch(ctx, b).Close()
}
