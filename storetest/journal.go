package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

func testHead(t *testing.T, open Opener) {
	t.Run("Empty", func(t *testing.T) {
		e := newEnv(t, open)
		if h := e.head(); h != (dtm.Snapshot{}) {
			t.Fatalf("Head of empty store = %+v, want zero", h)
		}
	})
	t.Run("OK", func(t *testing.T) {
		e := newEnv(t, open)
		c1 := e.apply(PracticeA, PatientWrite("p1", "Smith"))
		e.apply(PracticeA, PatientWrite("p1", "Smith")) // skipped: head unchanged
		if h := e.head(); h != c1.Snapshot {
			t.Fatalf("Head = %+v, want %+v", h, c1.Snapshot)
		}
		e.clock.Advance(time.Second)
		c2 := e.apply(PracticeB, PatientWrite("p1", "Smith"), PatientWrite("p2", "Jones"))
		if h := e.head(); h != c2.Snapshot || h.Seq != 3 {
			t.Fatalf("Head = %+v, want %+v (seq 3: one store-wide journal)", h, c2.Snapshot)
		}
	})
}

func testSnapshotAt(t *testing.T, open Opener) {
	e := newEnv(t, open)
	at := func(tm time.Time) dtm.Snapshot {
		t.Helper()
		s, err := e.s.SnapshotAt(e.ctx, tm)
		if err != nil {
			t.Fatalf("SnapshotAt(%v): %v", tm, err)
		}
		return s
	}
	if s := at(Epoch); s != (dtm.Snapshot{}) {
		t.Fatalf("SnapshotAt on an empty store = %+v, want zero", s)
	}
	c1 := e.apply(PracticeA, PatientWrite("p1", "Smith"), PatientWrite("p2", "Jones"))
	e.clock.Advance(time.Minute)
	c2 := e.apply(PracticeA, PatientWrite("p3", "Brown"))
	c3 := e.apply(PracticeA, PatientWrite("p4", "Green")) // 1µs after c2: same clock reading
	for _, tc := range []struct {
		name string
		t    time.Time
		want dtm.Snapshot
	}{
		{"BeforeFirst", c1.Time.Add(-time.Microsecond), dtm.Snapshot{}},
		{"AtFirst", c1.Time, c1.Snapshot},
		{"WithinMicrosecond", c1.Time.Add(999 * time.Nanosecond), c1.Snapshot},
		{"Between", c1.Time.Add(30 * time.Second), c1.Snapshot},
		{"JustBeforeSecond", c2.Time.Add(-time.Nanosecond), c1.Snapshot},
		{"AtSecond", c2.Time, c2.Snapshot},
		{"AtThird", c3.Time, c3.Snapshot},
		{"After", c3.Time.Add(time.Hour), c3.Snapshot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := at(tc.t); got.Seq != tc.want.Seq || !got.Time.Equal(tc.want.Time) {
				t.Fatalf("SnapshotAt(%v) = %+v, want %+v", tc.t, got, tc.want)
			}
		})
	}
	// Commit times round-trip through _since as FHIR instants.
	if got := at(c2.Time.In(time.FixedZone("BST", 3600))); got != c2.Snapshot {
		t.Fatalf("SnapshotAt in another zone = %+v, want %+v", got, c2.Snapshot)
	}
}

// changesFixture builds three snapshots of PracticeA (plus noise in
// PracticeB) and returns their seqs:
//
//	s1: create Patient/a, Observation/b, Observation/c
//	s2: update a, delete b, create Observation/d
//	s3: update a, delete d, create Observation/e
func changesFixture(e *env) (s1, s2, s3 int64) {
	s1 = e.apply(PracticeA, PatientWrite("a", "A1"), ObservationWrite("b", "a", "1"), ObservationWrite("c", "a", "1")).Seq
	e.apply(PracticeB, PatientWrite("a", "B1"), ObservationWrite("x", "a", "1"))
	e.clock.Advance(time.Second)
	s2 = e.apply(PracticeA, PatientWrite("a", "A2"), Delete("Observation", "b"), ObservationWrite("d", "a", "1")).Seq
	e.clock.Advance(time.Second)
	s3 = e.apply(PracticeA, PatientWrite("a", "A3"), Delete("Observation", "d"), ObservationWrite("e", "a", "1")).Seq
	e.apply(PracticeB, PatientWrite("a", "B2"))
	return s1, s2, s3
}

func testChanges(t *testing.T, open Opener) {
	t.Run("Windows", func(t *testing.T) {
		e := newEnv(t, open)
		s1, s2, s3 := changesFixture(e)
		for _, tc := range []struct {
			name         string
			typ          string
			since, until int64
			want         []string
		}{
			{"Initial", "", 0, s1, []string{"Patient/a v1 upsert", "Observation/b v1 upsert", "Observation/c v1 upsert"}},
			{"Delta", "", s1, s2, []string{"Patient/a v2 upsert", "Observation/b v2 delete", "Observation/d v1 upsert"}},
			{"Delta2", "", s2, s3, []string{"Patient/a v3 upsert", "Observation/d v2 delete", "Observation/e v1 upsert"}},
			{"Merged", "", s1, s3, []string{"Observation/b v2 delete", "Patient/a v3 upsert", "Observation/d v2 delete", "Observation/e v1 upsert"}},
			{"AllAtS2", "", 0, s2, []string{"Observation/c v1 upsert", "Patient/a v2 upsert", "Observation/b v2 delete", "Observation/d v1 upsert"}},
			{"Type", "Observation", s1, s3, []string{"Observation/b v2 delete", "Observation/d v2 delete", "Observation/e v1 upsert"}},
			{"TypePatient", "Patient", 0, s1, []string{"Patient/a v1 upsert"}},
			{"Empty", "", s3, s3, nil},
			{"UnknownType", "Condition", 0, s3, nil},
			{"UntilBeyondHead", "Observation", s3, s3 + 100, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := e.changes(dtm.ChangeQuery{Practice: PracticeA, Type: tc.typ, Since: tc.since, Until: tc.until})
				if b := brief(got); !slices.Equal(b, tc.want) {
					t.Fatalf("Changes(%s, (%d, %d]) = %q, want %q", tc.typ, tc.since, tc.until, b, tc.want)
				}
				for i, c := range got {
					if c.Practice != PracticeA || (i > 0 && c.Seq <= got[i-1].Seq) || c.Seq <= tc.since || c.Seq > tc.until {
						t.Fatalf("Changes = %q: wrong practice, order or range", labels(got))
					}
				}
			})
		}
	})

	t.Run("StateAtUntil", func(t *testing.T) {
		// A resource changed again after Until is reported as it was at Until.
		e := newEnv(t, open)
		s1, _, _ := changesFixture(e)
		got := e.changes(dtm.ChangeQuery{Practice: PracticeA, Type: "Patient", Until: s1})
		if len(got) != 1 || got[0].Version != 1 || got[0].Seq > s1 {
			t.Fatalf("Changes = %q, want Patient/a v1", labels(got))
		}
		want, err := e.s.State(e.ctx, PracticeA, "Patient", "a", s1)
		if err != nil {
			t.Fatal(err)
		}
		if string(got[0].JSON) != string(want.JSON) || got[0].Hash != want.Hash {
			t.Fatalf("Changes JSON = %s, want the state at Until %s", got[0].JSON, want.JSON)
		}
	})

	t.Run("ExactlyOnce", func(t *testing.T) {
		// Every way of cutting (0, s3] into two windows reports each
		// resource's latest change exactly once, and nothing else.
		e := newEnv(t, open)
		_, _, s3 := changesFixture(e)
		final := map[string]string{}
		for _, c := range e.changes(dtm.ChangeQuery{Practice: PracticeA, Until: s3}) {
			final[c.Type+"/"+c.ID] = brief([]dtm.Change{c})[0]
		}
		for cut := int64(0); cut <= s3; cut++ {
			first := e.changes(dtm.ChangeQuery{Practice: PracticeA, Until: cut})
			second := e.changes(dtm.ChangeQuery{Practice: PracticeA, Since: cut, Until: s3})
			seen := map[string]int{}
			for _, c := range second {
				seen[c.Type+"/"+c.ID]++
				if got, want := brief([]dtm.Change{c})[0], final[c.Type+"/"+c.ID]; got != want {
					t.Fatalf("cut %d: second window reports %s, final state is %s", cut, got, want)
				}
			}
			for _, c := range first {
				if seen[c.Type+"/"+c.ID] == 0 { // superseded in the second window otherwise
					seen[c.Type+"/"+c.ID]++
					if got, want := brief([]dtm.Change{c})[0], final[c.Type+"/"+c.ID]; got != want {
						t.Fatalf("cut %d: first window reports %s, final state is %s", cut, got, want)
					}
				}
			}
			for r, n := range seen {
				if n != 1 {
					t.Fatalf("cut %d: %s reported %d times in the second window", cut, r, n)
				}
			}
			if !maps.EqualFunc(seen, final, func(int, string) bool { return true }) {
				t.Fatalf("cut %d: windows cover %v, want %v", cut, seen, final)
			}
		}
	})

	t.Run("FnError", func(t *testing.T) {
		e := newEnv(t, open)
		_, _, s3 := changesFixture(e)
		stop := errors.New("client went away")
		calls := 0
		err := e.s.Changes(e.ctx, dtm.ChangeQuery{Practice: PracticeA, Until: s3}, func(dtm.Change) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("Changes = %v after %d calls, want fn's error after 1", err, calls)
		}
	})

	t.Run("FnMayWrite", func(t *testing.T) {
		// fn may be slow and may use the store, writes included: Changes
		// holds no lock while fn runs, and still reports the window as it
		// was at Until.
		e := newEnv(t, open)
		var ws []dtm.Write
		for i := range 1200 {
			ws = append(ws, ObservationWrite(fmt.Sprintf("o%d", i), "p1", "1"))
		}
		until := e.apply(PracticeA, ws...).Seq
		n := 0
		err := e.s.Changes(e.ctx, dtm.ChangeQuery{Practice: PracticeA, Until: until}, func(c dtm.Change) error {
			n++
			if n%400 == 1 {
				if _, err := e.s.Apply(e.ctx, PracticeA, []dtm.Write{
					ObservationWrite(c.ID, "p1", "2"), ObservationWrite(fmt.Sprintf("new%d", n), "p1", "1"),
				}); err != nil {
					return err
				}
			}
			if c.Seq > until || c.Version != 1 {
				return fmt.Errorf("reported %s beyond Until %d", label(c), until)
			}
			return nil
		})
		if err != nil || n != 1200 {
			t.Fatalf("Changes = %v after %d changes, want 1200", err, n)
		}
	})

	t.Run("Paging", func(t *testing.T) {
		// More changes than any sensible page, with superseded versions
		// on both sides of page boundaries.
		e := newEnv(t, open)
		const n = 1234
		var ws []dtm.Write
		for i := range n {
			ws = append(ws, ObservationWrite(fmt.Sprintf("o%d", i), "p1", "1"))
			if i%3 == 0 {
				ws = append(ws, PatientWrite(fmt.Sprintf("p%d", i), "X"))
			}
		}
		s1 := e.apply(PracticeA, ws...).Seq
		ws = ws[:0]
		for i := 0; i < n; i += 2 {
			ws = append(ws, ObservationWrite(fmt.Sprintf("o%d", i), "p1", "2"))
		}
		s2 := e.apply(PracticeA, ws...).Seq
		for _, typ := range []string{"", "Observation"} {
			got := e.changes(dtm.ChangeQuery{Practice: PracticeA, Type: typ, Until: s2})
			want := n
			if typ == "" {
				want += (n + 2) / 3
			}
			if len(got) != want {
				t.Fatalf("Changes(%q) reported %d, want %d", typ, len(got), want)
			}
			ids := map[string]bool{}
			for i, c := range got {
				if i > 0 && c.Seq <= got[i-1].Seq {
					t.Fatalf("Changes(%q) out of order at %d", typ, i)
				}
				if ids[c.Type+"/"+c.ID] {
					t.Fatalf("Changes(%q) reported %s twice", typ, label(c))
				}
				ids[c.Type+"/"+c.ID] = true
				if c.Type == "Observation" && (c.Version == 2) != (c.Seq > s1) {
					t.Fatalf("Changes(%q) reported %s", typ, label(c))
				}
			}
			if got := e.changes(dtm.ChangeQuery{Practice: PracticeA, Type: typ, Since: s1, Until: s2}); len(got) != (n+1)/2 {
				t.Fatalf("Changes(%q, (s1, s2]) reported %d, want %d", typ, len(got), (n+1)/2)
			}
		}
	})
}

func testCompartment(t *testing.T, open Opener) {
	e := newEnv(t, open)
	noPatient := Upsert("Patient", "p2", "", PatientJSON("p2", "Jones")) // the store files a Patient in its own compartment
	s1 := e.apply(PracticeA,
		PatientWrite("p1", "Smith"), noPatient,
		ObservationWrite("o1", "p1", "1"), ObservationWrite("o2", "p1", "1"), ObservationWrite("o3", "p2", "1"),
		Upsert("Condition", "c1", "p1", []byte(`{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/p1"}}`)),
		Upsert("Practitioner", "gp1", "", []byte(`{"resourceType":"Practitioner","id":"gp1"}`)),
	).Seq
	e.apply(PracticeB, PatientWrite("p1", "Other"), ObservationWrite("o9", "p1", "1"))
	s2 := e.apply(PracticeA, Delete("Observation", "o2"), ObservationWrite("o1", "p2", "2")).Seq // o1 moves to p2
	s3 := e.apply(PracticeA, Delete("Patient", "p1")).Seq
	for _, tc := range []struct {
		patient string
		at      int64
		want    []string
	}{
		{"p1", s1, []string{"Patient/p1 v1 upsert", "Observation/o1 v1 upsert", "Observation/o2 v1 upsert", "Condition/c1 v1 upsert"}},
		{"p1", s2, []string{"Patient/p1 v1 upsert", "Condition/c1 v1 upsert"}},
		{"p2", s1, []string{"Patient/p2 v1 upsert", "Observation/o3 v1 upsert"}},
		{"p2", s2, []string{"Patient/p2 v1 upsert", "Observation/o3 v1 upsert", "Observation/o1 v2 upsert"}},
		{"p1", s3, []string{"Condition/c1 v1 upsert"}},
		{"p1", 0, nil},
		{"nobody", s3, nil},
	} {
		t.Run(fmt.Sprintf("%s@%d", tc.patient, tc.at), func(t *testing.T) {
			if got := brief(e.compartment(PracticeA, tc.patient, tc.at)); !slices.Equal(got, tc.want) {
				t.Fatalf("Compartment(%s, %d) = %q, want %q", tc.patient, tc.at, got, tc.want)
			}
		})
	}
	t.Run("FnError", func(t *testing.T) {
		stop := errors.New("stop")
		err := e.s.Compartment(e.ctx, PracticeA, "p2", s3, func(dtm.Change) error { return stop })
		if !errors.Is(err, stop) {
			t.Fatalf("Compartment = %v, want fn's error", err)
		}
	})
}

func testState(t *testing.T, open Opener) {
	e := newEnv(t, open)
	s1, s2, s3 := changesFixture(e)
	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct {
			typ, id string
			at      int64
			want    string
		}{
			{"Patient", "a", s1, "Patient/a v1 upsert"},
			{"Patient", "a", s2, "Patient/a v2 upsert"},
			{"Patient", "a", s3 + 10, "Patient/a v3 upsert"},
			{"Observation", "b", s3, "Observation/b v2 delete"},
			{"Observation", "d", s2, "Observation/d v1 upsert"},
		} {
			st, err := e.s.State(e.ctx, PracticeA, tc.typ, tc.id, tc.at)
			if err != nil {
				t.Fatalf("State(%s/%s, %d): %v", tc.typ, tc.id, tc.at, err)
			}
			if got := brief([]dtm.Change{st})[0]; got != tc.want || st.Seq > tc.at || st.Practice != PracticeA {
				t.Fatalf("State(%s/%s, %d) = %s, want %s", tc.typ, tc.id, tc.at, label(st), tc.want)
			}
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, tc := range []struct {
			practice, typ, id string
			at                int64
		}{
			{PracticeA, "Observation", "e", s2}, // created later
			{PracticeA, "Patient", "a", 0},
			{PracticeA, "Patient", "zzz", s3},
			{PracticeB, "Observation", "b", s3},
			{"Z99999", "Patient", "a", s3},
		} {
			_, err := e.s.State(e.ctx, tc.practice, tc.typ, tc.id, tc.at)
			wantCode(t, err, dtm.ENotFound)
		}
	})
}

func testGet(t *testing.T, open Opener) {
	e := newEnv(t, open)
	changesFixture(e)
	t.Run("OK", func(t *testing.T) {
		c, err := e.s.Get(e.ctx, PracticeA, "Patient", "a")
		if err != nil {
			t.Fatal(err)
		}
		if got := brief([]dtm.Change{c})[0]; got != "Patient/a v3 upsert" || c.JSON == nil {
			t.Fatalf("Get = %s, want Patient/a v3 with JSON", label(c))
		}
		if c, err := e.s.Get(e.ctx, PracticeB, "Patient", "a"); err != nil || c.Version != 2 || c.Practice != PracticeB {
			t.Fatalf("Get in PracticeB = %s, %v; want v2", label(c), err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, id := range []string{"b", "d", "absent"} { // deleted, deleted, never existed
			_, err := e.s.Get(e.ctx, PracticeA, "Observation", id)
			wantCode(t, err, dtm.ENotFound)
		}
		_, err := e.s.Get(e.ctx, "Z99999", "Patient", "a")
		wantCode(t, err, dtm.ENotFound)
	})
}

func testCounts(t *testing.T, open Opener) {
	e := newEnv(t, open)
	s1, s2, s3 := changesFixture(e)
	head := e.head().Seq
	for _, tc := range []struct {
		name     string
		practice string
		at       int64
		want     map[string]int64
	}{
		{"Zero", PracticeA, 0, map[string]int64{}},
		{"S1", PracticeA, s1, map[string]int64{"Patient": 1, "Observation": 2}},
		{"S2", PracticeA, s2, map[string]int64{"Patient": 1, "Observation": 2}},
		{"S3", PracticeA, s3, map[string]int64{"Patient": 1, "Observation": 2}},
		{"Head", PracticeA, head, map[string]int64{"Patient": 1, "Observation": 2}},
		{"BeyondHead", PracticeA, head + 5, map[string]int64{"Patient": 1, "Observation": 2}},
		{"BBeforeAnything", PracticeB, s1, map[string]int64{}},
		{"B", PracticeB, head, map[string]int64{"Patient": 1, "Observation": 1}},
		{"Unknown", "Z99999", head, map[string]int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.s.Counts(e.ctx, tc.practice, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("Counts(%s, %d) = %v, want %v", tc.practice, tc.at, got, tc.want)
			}
		})
	}
	t.Run("DeleteAll", func(t *testing.T) {
		e.apply(PracticeA, Delete("Observation", "c"), Delete("Observation", "e"))
		s4 := e.head().Seq
		e.apply(PracticeA, ObservationWrite("f", "a", "1"))
		for at, want := range map[int64]map[string]int64{
			s3:     {"Patient": 1, "Observation": 2},
			s4:     {"Patient": 1},
			s4 + 1: {"Patient": 1, "Observation": 1},
		} {
			got, err := e.s.Counts(e.ctx, PracticeA, at)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Fatalf("Counts(%d) = %v, want %v", at, got, want)
			}
		}
	})
}
