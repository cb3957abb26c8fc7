package storetest

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

// record is one committed change as its writer knows it.
type record struct {
	seq     int64
	typ, id string
	version int64
	op      dtm.Op
}

// String formats r like label.
func (r record) String() string {
	return fmt.Sprintf("%s/%s v%d %s @%d", r.typ, r.id, r.version, r.op, r.seq)
}

// window is one Changes call between two Heads and what it reported.
type window struct {
	since, until int64
	got          []record
}

// testConcurrency is the property test of invariant 1 at the store level:
// writers commit random creates, updates and deletes concurrently while a
// reader chains Changes windows (previous Head, Head]. Each writer owns its
// resources, so it knows the seq and version of every write it committed
// (the journal's ground truth). Every window must report exactly the latest
// change at or before its Until of each resource whose latest change lies in
// the window: nothing missed, nothing twice, nothing extra.
func testConcurrency(t *testing.T, open Opener) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DTM_TEST_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("DTM_TEST_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay with DTM_TEST_SEED=%d)", seed, seed)

	e := newEnv(t, open)
	const (
		writers   = 4
		batches   = 40
		resources = 12 // per writer
	)
	var (
		mu      sync.Mutex
		truth   []record
		commits = map[int64]time.Time{} // last seq of a batch -> commit time
		done    atomic.Bool
		wg      sync.WaitGroup
		errs    = make(chan error, writers+1)
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			practice := PracticeA
			if w == writers-1 {
				practice = PracticeB // noise in another practice
			}
			version := map[string]int64{} // id -> latest version
			live := map[string]bool{}
			n := 0
			for range batches {
				var ws []dtm.Write
				var planned []record
				for range 1 + rng.IntN(8) {
					id := fmt.Sprintf("w%d-%d", w, rng.IntN(resources))
					typ := "Observation"
					if id[len(id)-1]%3 == 0 {
						typ = "Patient"
					}
					n++
					if live[id] && rng.IntN(4) == 0 {
						ws = append(ws, Delete(typ, id))
						live[id] = false
						version[id]++
						planned = append(planned, record{typ: typ, id: id, version: version[id], op: dtm.OpDelete})
						continue
					}
					ws = append(ws, Upsert(typ, id, "", ObservationJSON(id, "p", strconv.Itoa(n)))) // unique content
					live[id] = true
					version[id]++
					planned = append(planned, record{typ: typ, id: id, version: version[id], op: dtm.OpUpsert})
				}
				c, err := e.s.Apply(e.ctx, practice, ws)
				if err != nil {
					errs <- fmt.Errorf("writer %d: Apply: %w", w, err)
					return
				}
				if c.Applied != len(ws) || c.Skipped != 0 {
					errs <- fmt.Errorf("writer %d: Commit = %+v, want all %d applied", w, c, len(ws))
					return
				}
				mu.Lock()
				commits[c.Seq] = c.Time
				for i := range planned {
					planned[i].seq = c.Seq - int64(len(planned)-1-i)
				}
				if practice == PracticeA {
					truth = append(truth, planned...)
				}
				mu.Unlock()
				if rng.IntN(3) == 0 {
					e.clock.Advance(time.Duration(rng.IntN(1000)) * time.Microsecond)
				}
			}
		}()
	}

	var windows []window
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var prev int64
		for last := false; !last; {
			last = done.Load() // one more window after the writers finished
			h, err := e.s.Head(e.ctx)
			if err != nil {
				errs <- fmt.Errorf("reader: Head: %w", err)
				return
			}
			win := window{since: prev, until: h.Seq}
			err = e.s.Changes(e.ctx, dtm.ChangeQuery{Practice: PracticeA, Since: prev, Until: h.Seq}, func(c dtm.Change) error {
				win.got = append(win.got, record{seq: c.Seq, typ: c.Type, id: c.ID, version: c.Version, op: c.Op})
				if c.Practice != PracticeA {
					return fmt.Errorf("reported %s of practice %s", label(c), c.Practice)
				}
				return nil
			})
			if err != nil {
				errs <- fmt.Errorf("reader: Changes: %w", err)
				return
			}
			windows = append(windows, win)
			prev = h.Seq
		}
	}()
	wg.Wait()
	done.Store(true)
	<-readerDone
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	slices.SortFunc(truth, func(a, b record) int { return cmp.Compare(a.seq, b.seq) })
	nonEmpty, reported := 0, map[record]bool{}
	for _, win := range windows {
		want := expectedWindow(truth, win.since, win.until)
		if !slices.Equal(win.got, want) {
			t.Fatalf("window (%d, %d]:\n got %v\nwant %v", win.since, win.until, win.got, want)
		}
		for _, r := range win.got {
			if reported[r] {
				t.Fatalf("%v reported in two windows", r)
			}
			reported[r] = true
		}
		if len(win.got) > 0 {
			nonEmpty++
		}
	}
	final := windows[len(windows)-1].until
	for _, r := range expectedWindow(truth, 0, final) {
		if !reported[r] {
			t.Fatalf("final state %v never reported", r)
		}
	}
	// Commit times strictly increase with seq.
	seqs := slices.Sorted(func(yield func(int64) bool) {
		for s := range commits {
			if !yield(s) {
				return
			}
		}
	})
	for i := 1; i < len(seqs); i++ {
		if !commits[seqs[i]].After(commits[seqs[i-1]]) {
			t.Fatalf("commit @%d at %v is not after commit @%d at %v", seqs[i], commits[seqs[i]], seqs[i-1], commits[seqs[i-1]])
		}
	}
	t.Logf("%d writes in %d commits; %d windows, %d non-empty", len(truth), len(commits), len(windows), nonEmpty)
}

// expectedWindow returns, in seq order, the latest record at or before
// until of every resource whose latest record lies in (since, until].
func expectedWindow(truth []record, since, until int64) []record {
	latest := map[string]record{}
	for _, r := range truth {
		if r.seq <= until {
			latest[r.typ+"/"+r.id] = r
		}
	}
	var out []record
	for _, r := range latest {
		if r.seq > since {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b record) int { return cmp.Compare(a.seq, b.seq) })
	return out
}
