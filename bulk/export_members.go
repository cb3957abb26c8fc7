package bulk

import (
	"context"
	"sync"

	"github.com/dtm-project/dtm"
)

// memberCacheSnapshots is how many (practice, seq) snapshots memberCache
// keeps patients' states for; the least recently used goes first.
const memberCacheSnapshots = 4

// memberCache remembers the states of Patients at snapshots, as export
// selectors look them up (membership at a job's Until, and at its Since
// for joiners). A group export asks for every patient's state once per
// file and once per planning range; with the cache, once per export (and
// once for every export pinned at the same snapshot). A Patient's state
// at a seq at or below the journal's head never changes (the journal is
// append-only), so a cached state is never stale. It is safe for
// concurrent use.
type memberCache struct {
	mu    sync.Mutex
	order []memberKey // least recently used first
	sets  map[memberKey]map[string]memberState
}

// memberKey names one snapshot of one practice.
type memberKey struct {
	practice string
	at       int64
}

// memberState is what selectors read of a Patient's state.
type memberState struct {
	found  bool // false: the patient has no change at or before the seq
	op     dtm.Op
	member bool
}

// selectorJournal returns the journal export selectors read: the
// configured one, with Patient states cached.
func (s *Server) selectorJournal() dtm.Journal { return memberJournal{s.cfg.Journal, s.members} }

func newMemberCache() *memberCache {
	return &memberCache{sets: map[memberKey]map[string]memberState{}}
}

// get returns the cached state of patient id at k.
func (m *memberCache) get(k memberKey, id string) (memberState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.sets[k][id]
	return st, ok
}

// put records the state of patient id at k, making k the most recently
// used snapshot and dropping the least recently used beyond
// memberCacheSnapshots.
func (m *memberCache) put(k memberKey, id string, st memberState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set, ok := m.sets[k]
	if !ok {
		set = map[string]memberState{}
		m.sets[k] = set
		m.order = append(m.order, k)
		if len(m.order) > memberCacheSnapshots {
			delete(m.sets, m.order[0])
			m.order = m.order[1:]
		}
	} else if m.order[len(m.order)-1] != k {
		for i, o := range m.order {
			if o == k {
				m.order = append(append(m.order[:i:i], m.order[i+1:]...), k)
				break
			}
		}
	}
	set[id] = st
}

// memberJournal is the journal export selectors read through: Patient
// states come from cache when known. Its State is for selectors only: a
// cached answer carries the patient's Op and Member and nothing else
// (selectors read nothing else), and seq `at` must be at or below the
// head (an export's Since and Until are). Everything else goes to the
// underlying journal.
type memberJournal struct {
	dtm.Journal
	cache *memberCache
}

// State implements dtm.Journal as described on memberJournal.
func (j memberJournal) State(ctx context.Context, practice, typ, id string, at int64) (dtm.Change, error) {
	if typ != "Patient" || j.cache == nil {
		return j.Journal.State(ctx, practice, typ, id, at)
	}
	k := memberKey{practice, at}
	if st, ok := j.cache.get(k, id); ok {
		if !st.found {
			return dtm.Change{}, dtm.Errorf(dtm.ENotFound, "no such resource")
		}
		return dtm.Change{Practice: practice, Type: typ, ID: id, Op: st.op, Member: st.member}, nil
	}
	c, err := j.Journal.State(ctx, practice, typ, id, at)
	switch {
	case dtm.ErrorCode(err) == dtm.ENotFound:
		j.cache.put(k, id, memberState{})
	case err == nil:
		j.cache.put(k, id, memberState{found: true, op: c.Op, member: c.Member})
	}
	return c, err
}

// ChangeHeaders implements HeaderLister with the underlying journal's,
// or with Changes when it has none.
func (j memberJournal) ChangeHeaders(ctx context.Context, q dtm.ChangeQuery, fn func(dtm.Change) error) error {
	if hl, ok := j.Journal.(HeaderLister); ok {
		return hl.ChangeHeaders(ctx, q, fn)
	}
	return j.Journal.Changes(ctx, q, fn)
}
