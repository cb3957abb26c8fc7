package postgres

// This file is the database-independent half of Apply. sqlite/apply.go is
// a copy of it: keep the two identical (TestApplyCopy checks).

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// prepared is a validated write with its content hash.
type prepared struct {
	dtm.Write
	hash string
}

// key names one resource of a practice.
type key struct{ typ, id string }

// state is what Apply needs of a resource's latest journal row.
type state struct {
	version int64
	op      dtm.Op
	hash    string
	patient string
}

// row is one journal row to insert.
type row struct {
	seq     int64
	typ, id string
	version int64
	op      dtm.Op
	patient string
	member  bool
	hash    string
	json    []byte
	keep    bool // JSON stored exactly as given (the write had a Version)
}

// check validates the shape of every write before any lock is taken. It
// returns an EInvalid error naming the first malformed write by index (never
// by content: that may be patient data). JSON is checked while hashing.
func check(writes []dtm.Write) ([]prepared, error) {
	ps := make([]prepared, len(writes))
	for i, w := range writes {
		switch {
		case w.Type == "":
			return nil, dtm.Errorf(dtm.EInvalid, "write %d: empty resource type", i)
		case w.ID == "":
			return nil, dtm.Errorf(dtm.EInvalid, "write %d: empty resource id", i)
		case w.Op != dtm.OpUpsert && w.Op != dtm.OpDelete:
			return nil, dtm.Errorf(dtm.EInvalid, "write %d: unknown op %d", i, w.Op)
		case w.Op == dtm.OpUpsert && len(w.JSON) == 0:
			return nil, dtm.Errorf(dtm.EInvalid, "write %d: upsert without a resource", i)
		case w.Version < 0:
			return nil, dtm.Errorf(dtm.EInvalid, "write %d: negative version", i)
		}
		ps[i].Write = w
		if w.Op == dtm.OpDelete {
			ps[i].JSON = nil
		}
	}
	return ps, nil
}

// hasher computes the content hashes of a batch's upserts on background
// goroutines, chunk by chunk in order, so that hashing later chunks
// overlaps with writing earlier ones.
type hasher struct {
	ps    []prepared
	chunk int
	done  []chan struct{} // done[c] is closed when chunk c is hashed
	errs  []error         // errs[c] is chunk c's first error
	next  atomic.Int64    // next chunk to hash
	stop  atomic.Bool
}

// startHashing starts hashing ps in chunks of size chunk. Small batches are
// hashed at once on the calling goroutine. Call stop when done waiting.
func startHashing(ps []prepared, chunk int) *hasher {
	n := (len(ps) + chunk - 1) / chunk
	h := &hasher{ps: ps, chunk: chunk, done: make([]chan struct{}, n), errs: make([]error, n)}
	for c := range h.done {
		h.done[c] = make(chan struct{})
	}
	if n <= 1 {
		h.work()
		return h
	}
	for range min(runtime.GOMAXPROCS(0), n) {
		go h.work()
	}
	return h
}

// work hashes chunks until none is left or stop is called.
func (h *hasher) work() {
	for !h.stop.Load() {
		c := int(h.next.Add(1) - 1)
		if c >= len(h.done) {
			return
		}
		for i := c * h.chunk; i < min(len(h.ps), (c+1)*h.chunk); i++ {
			p := &h.ps[i]
			if p.Op != dtm.OpUpsert {
				continue
			}
			hash, err := fhir.ContentHash(p.JSON)
			if err != nil {
				h.errs[c] = dtm.Errorf(dtm.EInvalid, "write %d (%s): invalid resource json", i, p.Type)
				break
			}
			p.hash = hash
		}
		close(h.done[c])
	}
}

// wait returns when chunk c is hashed, with its error.
func (h *hasher) wait(ctx context.Context, c int) error {
	select {
	case <-h.done[c]:
		return h.errs[c]
	case <-ctx.Done():
		return ctx.Err()
	}
}

// halt makes the workers stop after their current chunk.
func (h *hasher) halt() { h.stop.Store(true) }

// journalWriter is the database half of Apply, inside its transaction.
type journalWriter interface {
	// states returns the latest journal row of each resource of keys that
	// has one.
	states(ctx context.Context, keys []key) (map[key]state, error)
	// insert appends rows to the journal.
	insert(ctx context.Context, rows []row) error
}

// batchResult is what applyChunks did.
type batchResult struct {
	applied, skipped int
	live             map[string]int64 // change in live resources per type
}

// applyChunks plans, stamps (with commit time t) and inserts the writes ps
// chunk by chunk, numbering applied writes from head+1, while h hashes
// later chunks and a goroutine stamps the chunk before the one being
// planned. It must run inside the store's commit lock.
func applyChunks(ctx context.Context, jw journalWriter, ps []prepared, h *hasher, head int64, t time.Time) (batchResult, error) {
	res := batchResult{live: make(map[string]int64)}
	cur := make(map[key]state)
	looked := make(map[key]bool)
	type stamped struct {
		rows []row
		done chan error
	}
	var pending *stamped // the previous chunk, being stamped
	flush := func() error {
		if pending == nil {
			return nil
		}
		p := pending
		pending = nil
		if err := <-p.done; err != nil {
			return err
		}
		return jw.insert(ctx, p.rows)
	}
	for c := range h.done {
		if err := h.wait(ctx, c); err != nil {
			return batchResult{}, err
		}
		chunk := ps[c*h.chunk : min(len(ps), (c+1)*h.chunk)]
		var keys []key
		for _, w := range chunk {
			if k := (key{w.Type, w.ID}); !looked[k] {
				looked[k] = true
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			found, err := jw.states(ctx, keys)
			if err != nil {
				return batchResult{}, err
			}
			for k, st := range found {
				cur[k] = st
			}
		}
		rows, skipped := plan(chunk, cur, head+int64(res.applied)+1, res.live)
		res.applied += len(rows)
		res.skipped += skipped
		s := &stamped{rows: rows, done: make(chan error, 1)}
		if len(h.done) == 1 {
			s.done <- stamp(rows, t)
		} else {
			go func() { s.done <- stamp(rows, t) }()
		}
		if err := flush(); err != nil {
			return batchResult{}, err
		}
		pending = s
	}
	if err := flush(); err != nil {
		return batchResult{}, err
	}
	return res, nil
}

// plan decides, in order, what each write does given the current states of
// the resources (cur, which it updates), numbering applied writes from seq
// next. A write is skipped when it would change nothing: an upsert with the
// current live content (Version == 0), a delete of an absent or deleted
// resource, or a known Version not newer than the stored one. A later write
// to the same resource sees the earlier one's result. It returns the rows to
// insert (JSON not yet stamped) and the number skipped, and adds the change
// in live resources per type to live.
func plan(ps []prepared, cur map[key]state, next int64, live map[string]int64) (rows []row, skipped int) {
	for _, w := range ps {
		k := key{w.Type, w.ID}
		st, exists := cur[k]
		isLive := exists && st.op == dtm.OpUpsert
		switch {
		case w.Version != 0 && exists && st.version >= w.Version,
			w.Op == dtm.OpDelete && !isLive,
			w.Op == dtm.OpUpsert && w.Version == 0 && isLive && st.hash == w.hash:
			skipped++
			continue
		}
		version := w.Version
		if version == 0 {
			version = st.version + 1
		}
		r := row{
			seq: next + int64(len(rows)), typ: w.Type, id: w.ID, version: version, op: w.Op,
			patient: w.Patient, member: w.Member, hash: w.hash, json: w.JSON, keep: w.Version != 0,
		}
		if r.patient == "" && w.Type == "Patient" {
			r.patient = w.ID // a Patient is in its own compartment
		}
		if w.Op == dtm.OpDelete {
			r.member = false
			if r.patient == "" {
				r.patient = st.patient // a tombstone stays in its compartment
			}
			live[w.Type]--
		} else if !isLive {
			live[w.Type]++
		}
		rows = append(rows, r)
		cur[k] = state{version: version, op: w.Op, hash: r.hash, patient: r.patient}
	}
	return rows, skipped
}

// stamp sets meta.versionId and meta.lastUpdated to each upsert row's
// version and t, except on rows whose JSON is kept as given.
func stamp(rows []row, t time.Time) error {
	for i := range rows {
		if rows[i].op != dtm.OpUpsert || rows[i].keep {
			continue
		}
		b, err := fhir.StampMeta(rows[i].json, rows[i].version, t)
		if err != nil {
			return dtm.Errorf(dtm.EInvalid, "write of %s: invalid resource json", rows[i].typ)
		}
		rows[i].json = b
	}
	return nil
}
