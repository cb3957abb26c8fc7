package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/reconcile"
	"github.com/google/go-cmp/cmp"
)

// HeaderLister is bulk.HeaderLister (declared again here: the suite does
// not import the protocol packages): Changes without the resource JSON.
type HeaderLister interface {
	ChangeHeaders(ctx context.Context, q dtm.ChangeQuery, fn func(dtm.Change) error) error
}

// journalOnly hides a store's optional extensions (HeaderLister,
// dtm.DigestLister), so package reconcile reads it through Journal.Changes
// and the resource bodies: the reference the extensions must agree with.
type journalOnly struct{ dtm.Journal }

// digestFixture writes, over several commits to PracticeA (with PracticeB
// writes in between, which must never show), a history with every case a
// digest must get right: updates, deletes, a deducted and a deleted
// patient who later returns, a resource that moves between compartments
// and one that leaves every compartment, a compartment whose Patient does
// not exist, resources in no compartment that are updated and deleted, and
// two writes of one resource in one batch. It returns the snapshot after
// each commit to PracticeA.
func digestFixture(e *env) []dtm.Snapshot {
	noPatient := func(typ, id, name string) dtm.Write {
		return Upsert(typ, id, "", fmt.Appendf(nil, `{"resourceType":%q,"id":%q,"name":%q}`, typ, id, name))
	}
	deducted := PatientWrite("p2", "Jones")
	deducted.JSON = []byte(strings.Replace(string(deducted.JSON), `"gender"`, `"active":false,"gender"`, 1))
	deducted.Member = false
	var snaps []dtm.Snapshot
	step := func(practice string, ws ...dtm.Write) {
		e.clock.Advance(time.Minute)
		c := e.apply(practice, ws...)
		if practice == PracticeA {
			snaps = append(snaps, c.Snapshot)
		}
	}
	step(PracticeA,
		noPatient("Practitioner", "pr1", "Dr One"), noPatient("Organization", "org1", "Surgery"),
		PatientWrite("p1", "Smith"), PatientWrite("p2", "Jones"), PatientWrite("p3", "Brown"),
		ObservationWrite("o1", "p1", "5.60"), ObservationWrite("o2", "p1", "1.0"),
		ObservationWrite("o3", "p2", "2.50"), ObservationWrite("o4", "p3", "7"))
	step(PracticeB, PatientWrite("p1", "Other"), ObservationWrite("o1", "p1", "9.9"), noPatient("Practitioner", "pr1", "Dr B"))
	step(PracticeA,
		ObservationWrite("o1", "p1", "5.70"), Delete("Observation", "o2"), deducted,
		noPatient("Practitioner", "pr1", "Dr One Renamed"), ObservationWrite("o5", "p1", "3"),
		ObservationWrite("o5", "p1", "3.10")) // twice in one batch
	step(PracticeA,
		Delete("Patient", "p3"), noPatient("Location", "loc1", "Room 1"),
		ObservationWrite("o3", "p1", "2.50"),                              // moves from p2's compartment to p1's
		Delete("Organization", "org1"), ObservationWrite("o6", "p4", "8")) // p4 has no Patient
	step(PracticeB, Delete("Observation", "o1"))
	step(PracticeA,
		PatientWrite("p3", "Brown"),                                            // returns
		Upsert("Observation", "o4", "", ObservationJSON("o4", "p3", "7")),      // leaves every compartment
		Upsert("Observation", "o1", "p0", ObservationJSON("o1", "p0", "5.70"))) // moves to a patient sorting first
	step(PracticeA, Delete("Patient", "p1"), Delete("Practitioner", "pr1"))
	return snaps
}

// headers returns what ChangeHeaders reports, failing the test on error.
func (e *env) headers(hl HeaderLister, q dtm.ChangeQuery) []dtm.Change {
	e.t.Helper()
	var out []dtm.Change
	if err := hl.ChangeHeaders(e.ctx, q, func(c dtm.Change) error { out = append(out, c); return nil }); err != nil {
		e.t.Fatalf("ChangeHeaders(%+v): %v", q, err)
	}
	return out
}

// withoutJSON returns cs with every JSON nil.
func withoutJSON(cs []dtm.Change) []dtm.Change {
	out := slices.Clone(cs)
	for i := range out {
		out[i].JSON = nil
	}
	return out
}

func testChangeHeaders(t *testing.T, open Opener) {
	if _, ok := newEnv(t, open).s.(HeaderLister); !ok {
		t.Skip("store does not implement ChangeHeaders")
	}
	t.Run("EqualsChangesWithoutJSON", func(t *testing.T) {
		e := newEnv(t, open)
		hl := e.s.(HeaderLister)
		snaps := digestFixture(e)
		seqs := []int64{0}
		for _, s := range snaps {
			seqs = append(seqs, s.Seq-1, s.Seq)
		}
		seqs = append(seqs, snaps[len(snaps)-1].Seq+10) // beyond Head
		n := 0
		for _, typ := range []string{"", "Patient", "Observation", "Practitioner", "Organization", "Absent"} {
			for _, since := range seqs {
				for _, until := range seqs {
					if until < since {
						continue
					}
					for _, practice := range []string{PracticeA, PracticeB} {
						q := dtm.ChangeQuery{Practice: practice, Type: typ, Since: since, Until: until}
						want := withoutJSON(e.changes(q))
						got := e.headers(hl, q)
						if diff := cmp.Diff(want, got); diff != "" {
							t.Fatalf("ChangeHeaders(%+v) differs from Changes without JSON (-want +got):\n%s", q, diff)
						}
						n += len(got)
					}
				}
			}
		}
		if n == 0 {
			t.Fatal("no change compared")
		}
	})
	t.Run("ErrFromFn", func(t *testing.T) {
		e := newEnv(t, open)
		e.apply(PracticeA, PatientWrite("p1", "Smith"), PatientWrite("p2", "Jones"))
		stop := fmt.Errorf("stop")
		calls := 0
		err := e.s.(HeaderLister).ChangeHeaders(e.ctx, dtm.ChangeQuery{Practice: PracticeA, Until: 10}, func(dtm.Change) error {
			calls++
			return stop
		})
		if err != stop || calls != 1 {
			t.Fatalf("ChangeHeaders = %v after %d calls, want fn's error unwrapped after 1", err, calls)
		}
	})
}

// digestChanges returns what DigestChanges reports, failing the test on
// error.
func (e *env) digestChanges(dl dtm.DigestLister, practice string, at int64) []dtm.Change {
	e.t.Helper()
	var out []dtm.Change
	if err := dl.DigestChanges(e.ctx, practice, at, func(c dtm.Change) error { out = append(out, c); return nil }); err != nil {
		e.t.Fatalf("DigestChanges(%s, %d): %v", practice, at, err)
	}
	return out
}

// checkDigestLister checks DigestChanges at seq at against Changes: the
// same states without JSON, each resource once, ordered by patient; and
// the digest package reconcile computes through it against the one it
// computes through Journal.Changes and the resource bodies.
func (e *env) checkDigestLister(dl dtm.DigestLister, practice string, snap dtm.Snapshot) {
	t := e.t
	t.Helper()
	got := e.digestChanges(dl, practice, snap.Seq)
	if !slices.IsSortedFunc(got, func(x, y dtm.Change) int { return strings.Compare(x.Patient, y.Patient) }) {
		t.Fatalf("DigestChanges(%s, %d) not ordered by patient", practice, snap.Seq)
	}
	for _, c := range got {
		if c.JSON != nil {
			t.Fatalf("DigestChanges(%s, %d): %s/%s has JSON", practice, snap.Seq, c.Type, c.ID)
		}
	}
	bySeq := func(x, y dtm.Change) int { return int(x.Seq - y.Seq) }
	want := withoutJSON(e.changes(dtm.ChangeQuery{Practice: practice, Until: snap.Seq}))
	if diff := cmp.Diff(want, slices.SortedFunc(slices.Values(got), bySeq)); diff != "" {
		t.Fatalf("DigestChanges(%s, %d) differs from Changes without JSON (-want +got):\n%s", practice, snap.Seq, diff)
	}
	all := func(string) bool { return true }
	wantD, wantE, err := reconcile.Compute(e.ctx, journalOnly{e.s}, practice, snap, all)
	if err != nil {
		t.Fatalf("Compute through Changes at %d: %v", snap.Seq, err)
	}
	gotD, gotE, err := reconcile.Compute(e.ctx, e.s, practice, snap, all)
	if err != nil {
		t.Fatalf("Compute through DigestChanges at %d: %v", snap.Seq, err)
	}
	if diff := cmp.Diff(wantD, gotD); diff != "" {
		t.Fatalf("digest at %d through DigestChanges differs (-Changes +DigestChanges):\n%s", snap.Seq, diff)
	}
	if diff := cmp.Diff(wantE, gotE); diff != "" {
		t.Fatalf("digest entries at %d through DigestChanges differ (-Changes +DigestChanges):\n%s", snap.Seq, diff)
	}
}

func testDigestLister(t *testing.T, open Opener) {
	if _, ok := newEnv(t, open).s.(dtm.DigestLister); !ok {
		t.Skip("store does not implement dtm.DigestLister")
	}
	t.Run("OK", func(t *testing.T) {
		e := newEnv(t, open)
		dl := e.s.(dtm.DigestLister)
		if got := e.digestChanges(dl, PracticeA, 10); len(got) != 0 {
			t.Fatalf("DigestChanges of an empty store = %v", got)
		}
		snaps := digestFixture(e)
		for _, snap := range append([]dtm.Snapshot{{}}, snaps...) {
			e.checkDigestLister(dl, PracticeA, snap)
		}
		last := snaps[len(snaps)-1]
		e.checkDigestLister(dl, PracticeB, last)
		// The fixture reaches every case: a deleted Patient, one deducted,
		// resources out of Group scope, and a no-patient bucket.
		d, _, err := reconcile.Compute(e.ctx, e.s, PracticeA, snaps[2], nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Excluded == 0 || d.Buckets[dtm.NoPatient] == "" || d.Counts["Patient"] != 2 {
			t.Fatalf("fixture digest at its third commit = %+v: want exclusions, a no-patient bucket and 2 Patients", d)
		}
		// Beyond Head is Head.
		beyond := e.digestChanges(dl, PracticeA, last.Seq+100)
		if diff := cmp.Diff(e.digestChanges(dl, PracticeA, last.Seq), beyond); diff != "" {
			t.Fatalf("DigestChanges beyond Head differs from at Head:\n%s", diff)
		}
	})
	t.Run("Paging", func(t *testing.T) {
		// More rows than a store reads per page, in both parts (no
		// compartment, compartments), with superseded rows among them.
		e := newEnv(t, open)
		dl := e.s.(dtm.DigestLister)
		var ws []dtm.Write
		for i := range 6000 {
			ws = append(ws, Upsert("Practitioner", fmt.Sprintf("pr%05d", i), "", fmt.Appendf(nil, `{"resourceType":"Practitioner","id":"pr%05d"}`, i)))
			p := fmt.Sprintf("p%03d", i%70)
			if i < 70 {
				ws = append(ws, PatientWrite(p, "Smith"))
			}
			ws = append(ws, ObservationWrite(fmt.Sprintf("o%05d", i), p, "1"))
		}
		first := e.apply(PracticeA, ws...)
		ws = ws[:0]
		for i := 0; i < 6000; i += 3 {
			ws = append(ws, Upsert("Practitioner", fmt.Sprintf("pr%05d", i), "", fmt.Appendf(nil, `{"resourceType":"Practitioner","id":"pr%05d","active":true}`, i)))
			ws = append(ws, ObservationWrite(fmt.Sprintf("o%05d", i), fmt.Sprintf("p%03d", i%70), "2"))
		}
		for i := 1; i < 6000; i += 7 {
			ws = append(ws, Delete("Observation", fmt.Sprintf("o%05d", i)))
		}
		e.clock.Advance(time.Minute)
		second := e.apply(PracticeA, ws...)
		e.checkDigestLister(dl, PracticeA, first.Snapshot)
		e.checkDigestLister(dl, PracticeA, second.Snapshot)
	})
	t.Run("ErrFromFn", func(t *testing.T) {
		e := newEnv(t, open)
		snaps := digestFixture(e)
		stop := fmt.Errorf("stop")
		calls := 0
		err := e.s.(dtm.DigestLister).DigestChanges(e.ctx, PracticeA, snaps[len(snaps)-1].Seq, func(dtm.Change) error {
			calls++
			return stop
		})
		if err != stop || calls != 1 {
			t.Fatalf("DigestChanges = %v after %d calls, want fn's error unwrapped after 1", err, calls)
		}
	})
}
