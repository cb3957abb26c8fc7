package bulk

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/dtm-project/dtm"
)

// countingJournal counts State calls.
type countingJournal struct {
	testStore
	states atomic.Int64
}

func (j *countingJournal) State(ctx context.Context, practice, typ, id string, at int64) (dtm.Change, error) {
	j.states.Add(1)
	return j.testStore.State(ctx, practice, typ, id, at)
}

func TestMemberJournal_State(t *testing.T) {
	e := newTestEnv(t, false, nil)
	e.apply(pA, patient("p1", true))
	c1 := e.apply(pA, patient("p2", true))
	under := &countingJournal{testStore: e.db}
	j := memberJournal{under, newMemberCache()}
	check := func(id string, at int64) {
		t.Helper()
		want, werr := e.db.State(e.ctx, pA, "Patient", id, at)
		for range 2 {
			got, err := j.State(e.ctx, pA, "Patient", id, at)
			if dtm.ErrorCode(err) != dtm.ErrorCode(werr) || got.Op != want.Op || got.Member != want.Member {
				t.Fatalf("State(%s, %d) = %+v, %v; want %+v, %v", id, at, got, err, want, werr)
			}
		}
	}
	check("p1", c1.Seq)
	check("p9", c1.Seq) // not found, cached too
	if n := under.states.Load(); n != 2 {
		t.Fatalf("%d lookups reached the journal, want 2", n)
	}
	// Later commits change nothing at the earlier seq.
	c2 := e.apply(pA, patient("p1", false))
	check("p1", c1.Seq)
	check("p1", c2.Seq)
	if n := under.states.Load(); n != 3 {
		t.Fatalf("%d lookups reached the journal, want 3", n)
	}
	// Other types are never cached.
	e.apply(pA, obs("o1", "p1", "1"))
	for range 2 {
		if _, err := j.State(e.ctx, pA, "Observation", "o1", c2.Seq+1); err != nil {
			t.Fatal(err)
		}
	}
	if n := under.states.Load(); n != 5 {
		t.Fatalf("%d lookups reached the journal, want 5", n)
	}
}

func TestMemberCache_Evicts(t *testing.T) {
	m := newMemberCache()
	for at := range int64(memberCacheSnapshots) {
		m.put(memberKey{pA, at}, "p", memberState{found: true})
	}
	m.put(memberKey{pA, 0}, "q", memberState{}) // 0 is now the most recently used
	m.put(memberKey{pA, 99}, "p", memberState{})
	if _, ok := m.get(memberKey{pA, 1}, "p"); ok {
		t.Fatal("least recently used snapshot kept")
	}
	for _, at := range []int64{0, 2, 3, 99} {
		if _, ok := m.get(memberKey{pA, at}, "p"); !ok {
			t.Fatalf("snapshot %d dropped", at)
		}
	}
	if _, ok := m.get(memberKey{pA, 0}, "q"); !ok {
		t.Fatal("recently used snapshot dropped")
	}
	if len(m.sets) != memberCacheSnapshots || len(m.order) != memberCacheSnapshots {
		t.Fatalf("%d snapshots (%d in order), want %d", len(m.sets), len(m.order), memberCacheSnapshots)
	}
}
