package postgres

// This file is the database-independent half of Apply. sqlite/apply.go is
// a copy of it: keep the two identical.

import (
	"runtime"
	"sync"
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

// parallelMin is the batch size from which prepare and stamp use every CPU.
const parallelMin = 64

// prepare validates writes and computes the content hash of every upsert,
// before any lock is taken. It returns an EInvalid error naming the first
// malformed write by index (never by content: that may be patient data).
func prepare(writes []dtm.Write) ([]prepared, error) {
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
	err := parallel(len(ps), func(i int) error {
		if ps[i].Op != dtm.OpUpsert {
			return nil
		}
		h, err := fhir.ContentHash(ps[i].JSON)
		if err != nil {
			return dtm.Errorf(dtm.EInvalid, "write %d (%s): invalid resource json", i, ps[i].Type)
		}
		ps[i].hash = h
		return nil
	})
	return ps, err
}

// plan decides, in order, what each write does given the current states of
// the batch's resources (cur, which it updates), numbering applied writes
// from seq head+1. A write is skipped when it would change nothing: an upsert
// with the current live content (Version == 0), a delete of an absent or
// deleted resource, or a known Version not newer than the stored one. A later
// write to the same resource in the batch sees the earlier one's result. It
// returns the rows to insert (JSON not yet stamped), the number skipped and
// the change in live resources per type.
func plan(ps []prepared, cur map[key]state, head int64) (rows []row, skipped int, live map[string]int64) {
	live = make(map[string]int64)
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
			seq: head + int64(len(rows)) + 1, typ: w.Type, id: w.ID, version: version, op: w.Op,
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
	return rows, skipped, live
}

// stamp sets meta.versionId and meta.lastUpdated to each upsert row's
// version and t, except on rows whose JSON is kept as given.
func stamp(rows []row, t time.Time) error {
	return parallel(len(rows), func(i int) error {
		if rows[i].op != dtm.OpUpsert || rows[i].keep {
			return nil
		}
		b, err := fhir.StampMeta(rows[i].json, rows[i].version, t)
		if err != nil {
			return dtm.Errorf(dtm.EInvalid, "write of %s: invalid resource json", rows[i].typ)
		}
		rows[i].json = b
		return nil
	})
}

// parallel calls fn(i) for i in [0, n), on every CPU when n is large, and
// returns the error of the lowest failing i.
func parallel(n int, fn func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n/parallelMin)
	if workers <= 1 {
		for i := range n {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * chunk; i < min(n, (w+1)*chunk); i++ {
				if err := fn(i); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
