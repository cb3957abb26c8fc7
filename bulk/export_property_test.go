package bulk

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/storetest"
)

// committed is one change the writer saw committed.
type committed struct {
	key string // "Type/id"
	seq int64
}

// pinnedExport is one export of a chain with the journal range it covers.
type pinnedExport struct {
	since, until int64
	x            exported
}

// TestExport_ExactlyOnce is the property test of invariant 1: random
// creates, updates and deletes run concurrently with a chain of exports,
// each with _since = the previous transactionTime; every committed change
// must appear in exactly one export (as the resource at that version or
// later, or as a delete), and no version twice.
func TestExport_ExactlyOnce(t *testing.T) {
	for _, tc := range []struct {
		name, path    string
		deletePatient bool // group exports drop deleted patients' records by design
	}{
		{"System", "/fhir/$export", true},
		{"Group", "/fhir/Group/" + pA + "/$export", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(3) {
				t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
					testExactlyOnce(t, tc.path, tc.deletePatient, seed)
				})
			}
		})
	}
}

func testExactlyOnce(t *testing.T, path string, deletePatient bool, seed uint64) {
	e := newTestEnv(t, true, func(c *Config) { c.MaxFileResources = 7; c.MaxActiveJobs = 10 })
	testExactlyOnceEnv(t, e, path, deletePatient, seed)
}

// testExactlyOnceEnv runs the property on e's store with the export at
// path; deletePatient lets the writer delete patients.
func testExactlyOnceEnv(t *testing.T, e *testEnv, path string, deletePatient bool, seed uint64) {
	const patients, observations, writes = 5, 30, 400
	for i := range patients {
		e.apply(pA, patient(fmt.Sprint("p", i), true))
	}
	var (
		mu      sync.Mutex
		changes []committed
		done    = make(chan struct{})
		stop    = make(chan struct{})
	)
	defer func() { close(stop); <-done }() // no writes after the test ends
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(seed, 42))
		for n := range writes {
			select {
			case <-stop:
				return
			default:
			}
			w := randomWrite(rng, n, patients, observations, deletePatient)
			c, err := e.db.Apply(e.ctx, pA, []dtm.Write{w})
			if err != nil {
				t.Error(err)
				return
			}
			if c.Applied == 1 {
				mu.Lock()
				changes = append(changes, committed{w.Type + "/" + w.ID, c.Seq})
				mu.Unlock()
			}
		}
	}()
	var chain []pinnedExport
	since, sinceSeq := "", int64(0)
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true // one more export after the last write
		default:
		}
		q := path
		if since != "" {
			q += "?_since=" + url.QueryEscape(since)
		}
		x := e.export(q)
		tt, err := parseInstant(x.m.TransactionTime)
		if err != nil {
			t.Fatal(err)
		}
		until, err := e.db.SnapshotAt(e.ctx, tt)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, pinnedExport{since: sinceSeq, until: until.Seq, x: x})
		since, sinceSeq = x.m.TransactionTime, until.Seq
	}
	if head, _ := e.db.Head(e.ctx); sinceSeq != head.Seq {
		t.Fatalf("last export ends at seq %d, head is %d", sinceSeq, head.Seq)
	}
	for _, p := range chain {
		checkWindow(t, e, p)
	}
	checkEveryChangeOnce(t, e, chain, changes)
	t.Logf("%d changes over %d exports", len(changes), len(chain))
}

// randomWrite returns a random upsert (new content) or delete.
func randomWrite(rng *rand.Rand, n, patients, observations int, deletePatient bool) dtm.Write {
	if rng.IntN(5) == 0 {
		id := fmt.Sprint("p", rng.IntN(patients))
		if deletePatient && rng.IntN(3) == 0 {
			return storetest.Delete("Patient", id)
		}
		w := patient(id, true)
		w.JSON = storetest.PatientJSON(id, "Family-"+strconv.Itoa(n))
		return w
	}
	id := fmt.Sprint("o", rng.IntN(observations))
	if rng.IntN(4) == 0 {
		return storetest.Delete("Observation", id)
	}
	return obs(id, fmt.Sprint("p", rng.IntN(patients)), strconv.Itoa(n))
}

// checkWindow checks that an export holds exactly the journal's changes in
// its range: each resource whose latest change is in (since, until], at its
// version then, live ones in output and deleted ones in deleted.
func checkWindow(t *testing.T, e *testEnv, p pinnedExport) {
	t.Helper()
	want := map[string]string{}
	err := e.db.Changes(e.ctx, dtm.ChangeQuery{Practice: pA, Since: p.since, Until: p.until}, func(c dtm.Change) error {
		if c.Op == dtm.OpDelete {
			want[c.Type+"/"+c.ID] = "deleted"
		} else {
			want[c.Type+"/"+c.ID] = strconv.FormatInt(c.Version, 10)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, v := range p.x.out {
		got[k] = v
	}
	for k := range p.x.deleted {
		got[k] = "deleted"
	}
	if len(got) != len(want) {
		t.Errorf("export (%d, %d]: %d resources, journal has %d", p.since, p.until, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("export (%d, %d]: %s = %q, want %q", p.since, p.until, k, got[k], v)
		}
	}
}

// checkEveryChangeOnce checks that each committed change lies in exactly
// one export's range and is reported there, and no version is reported
// twice across the chain.
func checkEveryChangeOnce(t *testing.T, e *testEnv, chain []pinnedExport, changes []committed) {
	t.Helper()
	for i := 1; i < len(chain); i++ {
		if chain[i].since != chain[i-1].until {
			t.Fatalf("export %d starts at %d, previous ended at %d", i, chain[i].since, chain[i-1].until)
		}
	}
	seen := map[string]int{}
	for _, p := range chain {
		for k, v := range p.x.out {
			seen[k+" v"+v]++
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s reported %d times", k, n)
		}
	}
	for _, c := range changes {
		var in []int
		for i, p := range chain {
			if p.since < c.seq && c.seq <= p.until {
				in = append(in, i)
			}
		}
		if len(in) != 1 {
			t.Fatalf("change %s@%d in %d export ranges", c.key, c.seq, len(in))
		}
		p := chain[in[0]]
		_, live := p.x.out[c.key]
		if !live && !p.x.deleted[c.key] {
			t.Errorf("change %s@%d missing from export %d", c.key, c.seq, in[0])
		}
	}
}
