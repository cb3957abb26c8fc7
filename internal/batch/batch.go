// Package batch is the database-independent half of Store.Apply, shared by
// the sqlite and postgres stores: it validates a batch of writes, hashes
// their content on background goroutines, decides which writes change
// anything (the skip rules of dtm.Journal.Apply), numbers and stamps the
// applied ones, and hands them to the store's Writer chunk by chunk.
package batch

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// Prepared is a validated write with its content hash (set by the Hasher).
type Prepared struct {
	dtm.Write
	hash string
}

// Key names one resource of a practice.
type Key struct{ Type, ID string }

// State is what Apply needs of a resource's latest journal row.
type State struct {
	Version int64
	Op      dtm.Op
	Hash    string
	Patient string
}

// Row is one journal row to insert.
type Row struct {
	Seq      int64
	Type, ID string
	Version  int64
	Op       dtm.Op
	Patient  string
	Member   bool
	Hash     string
	JSON     []byte
	Keep     bool // JSON stored exactly as given (the write had a Version)
}

// Check validates the shape of every write before any lock is taken. It
// returns an EInvalid error naming the first malformed write by index (never
// by content: that may be patient data). JSON is checked while hashing.
func Check(writes []dtm.Write) ([]Prepared, error) {
	ps := make([]Prepared, len(writes))
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

// Hasher computes the content hashes of a batch's upserts on background
// goroutines, chunk by chunk in order, so that hashing later chunks
// overlaps with writing earlier ones.
type Hasher struct {
	ps    []Prepared
	chunk int
	done  []chan struct{} // done[c] is closed when chunk c is hashed
	errs  []error         // errs[c] is chunk c's first error
	next  atomic.Int64    // next chunk to hash
	stop  atomic.Bool
}

// StartHashing starts hashing ps in chunks of size chunk. Small batches are
// hashed at once on the calling goroutine. Call Halt when done waiting.
func StartHashing(ps []Prepared, chunk int) *Hasher {
	n := (len(ps) + chunk - 1) / chunk
	h := &Hasher{ps: ps, chunk: chunk, done: make([]chan struct{}, n), errs: make([]error, n)}
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
func (h *Hasher) work() {
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
func (h *Hasher) wait(ctx context.Context, c int) error {
	select {
	case <-h.done[c]:
		return h.errs[c]
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Halt makes the workers stop after their current chunk.
func (h *Hasher) Halt() { h.stop.Store(true) }

// Writer is the database half of Apply, inside its transaction.
type Writer interface {
	// States returns the latest journal row of each resource of keys that
	// has one.
	States(ctx context.Context, keys []Key) (map[Key]State, error)
	// Insert appends rows to the journal.
	Insert(ctx context.Context, rows []Row) error
}

// Result is what ApplyChunks did.
type Result struct {
	Applied, Skipped int
	Live             map[string]int64 // change in live resources per type
}

// ApplyChunks plans, stamps (with commit time t) and inserts the writes ps
// chunk by chunk, numbering applied writes from head+1, while h hashes
// later chunks and a goroutine stamps the chunk before the one being
// planned. It must run inside the store's commit lock.
func ApplyChunks(ctx context.Context, jw Writer, ps []Prepared, h *Hasher, head int64, t time.Time) (Result, error) {
	res := Result{Live: make(map[string]int64)}
	cur := make(map[Key]State)
	looked := make(map[Key]bool)
	type stamped struct {
		rows []Row
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
		return jw.Insert(ctx, p.rows)
	}
	for c := range h.done {
		if err := h.wait(ctx, c); err != nil {
			return Result{}, err
		}
		chunk := ps[c*h.chunk : min(len(ps), (c+1)*h.chunk)]
		var keys []Key
		for _, w := range chunk {
			if k := (Key{w.Type, w.ID}); !looked[k] {
				looked[k] = true
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			found, err := jw.States(ctx, keys)
			if err != nil {
				return Result{}, err
			}
			for k, st := range found {
				cur[k] = st
			}
		}
		rows, skipped := plan(chunk, cur, head+int64(res.Applied)+1, res.Live)
		res.Applied += len(rows)
		res.Skipped += skipped
		s := &stamped{rows: rows, done: make(chan error, 1)}
		if len(h.done) == 1 {
			s.done <- stamp(rows, t)
		} else {
			go func() { s.done <- stamp(rows, t) }()
		}
		if err := flush(); err != nil {
			return Result{}, err
		}
		pending = s
	}
	if err := flush(); err != nil {
		return Result{}, err
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
func plan(ps []Prepared, cur map[Key]State, next int64, live map[string]int64) (rows []Row, skipped int) {
	for _, w := range ps {
		k := Key{w.Type, w.ID}
		st, exists := cur[k]
		isLive := exists && st.Op == dtm.OpUpsert
		switch {
		case w.Version != 0 && exists && st.Version >= w.Version,
			w.Op == dtm.OpDelete && !isLive,
			w.Op == dtm.OpUpsert && w.Version == 0 && isLive && st.Hash == w.hash:
			skipped++
			continue
		}
		version := w.Version
		if version == 0 {
			version = st.Version + 1
		}
		r := Row{
			Seq: next + int64(len(rows)), Type: w.Type, ID: w.ID, Version: version, Op: w.Op,
			Patient: w.Patient, Member: w.Member, Hash: w.hash, JSON: w.JSON, Keep: w.Version != 0,
		}
		if r.Patient == "" && w.Type == "Patient" {
			r.Patient = w.ID // a Patient is in its own compartment
		}
		if w.Op == dtm.OpDelete {
			r.Member = false
			if r.Patient == "" {
				r.Patient = st.Patient // a tombstone stays in its compartment
			}
			live[w.Type]--
		} else if !isLive {
			live[w.Type]++
		}
		rows = append(rows, r)
		cur[k] = State{Version: version, Op: w.Op, Hash: r.Hash, Patient: r.Patient}
	}
	return rows, skipped
}

// stamp sets meta.versionId and meta.lastUpdated to each upsert row's
// version and t, except on rows whose JSON is kept as given.
func stamp(rows []Row, t time.Time) error {
	for i := range rows {
		if rows[i].Op != dtm.OpUpsert || rows[i].Keep {
			continue
		}
		b, err := fhir.StampMeta(rows[i].JSON, rows[i].Version, t)
		if err != nil {
			return dtm.Errorf(dtm.EInvalid, "write of %s: invalid resource json", rows[i].Type)
		}
		rows[i].JSON = b
	}
	return nil
}
