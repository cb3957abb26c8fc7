// Package storetest is the conformance suite of dtm.Store: the same tests run
// against every implementation (package sqlite always, package postgres
// whenever a server can be started), so that both keep the journal's
// contract — exact Changes windows, skip rules, versions, fidelity, commit
// ordering under concurrency — in exactly the same way.
//
// Use it from an implementation's tests:
//
//	func TestDB(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, clock dtm.Clock) dtm.Store { return MustOpenClock(t, clock) })
//	}
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

// Opener returns a new, empty store that uses clock for commit times. It
// must arrange for the store to be closed when t ends (t.Cleanup); the suite
// never closes it.
type Opener func(t *testing.T, clock dtm.Clock) dtm.Store

// Run runs the conformance suite against the stores open returns, one new
// store per subtest. The top-level groups run in parallel, so open must be
// safe for concurrent use.
func Run(t *testing.T, open Opener) {
	for _, g := range []struct {
		name string
		test func(*testing.T, Opener)
	}{
		{"Apply", testApply},
		{"Head", testHead},
		{"SnapshotAt", testSnapshotAt},
		{"Changes", testChanges},
		{"Compartment", testCompartment},
		{"State", testState},
		{"Get", testGet},
		{"Counts", testCounts},
		{"ChangeHeaders", testChangeHeaders},
		{"DigestLister", testDigestLister},
		{"Practices", testPractices},
		{"Concurrency", testConcurrency},
	} {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel() // every group has its own stores
			g.test(t, open)
		})
	}
}

// Clock is a manual clock for tests: it stands still until Set or Advance.
// It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set sets the clock to t (which may be earlier than now).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Epoch is the time a suite clock starts at: a Friday 17:00 in London.
var Epoch = time.Date(2026, 3, 27, 17, 0, 0, 0, time.UTC)

// Practice codes the suite registers.
const (
	PracticeA = "A12345"
	PracticeB = "B67890"
)

// env is one subtest's store, clock and context.
type env struct {
	t     *testing.T
	s     dtm.Store
	clock *Clock
	ctx   context.Context
}

// newEnv opens a store with a fresh clock and registers PracticeA and
// PracticeB.
func newEnv(t *testing.T, open Opener) *env {
	t.Helper()
	e := &env{t: t, clock: NewClock(Epoch), ctx: context.Background()}
	e.s = open(t, e.clock)
	for _, ods := range []string{PracticeA, PracticeB} {
		if _, err := e.s.CreatePractice(e.ctx, dtm.Practice{ODS: ods, Name: "Practice " + ods}); err != nil {
			t.Fatalf("CreatePractice(%s): %v", ods, err)
		}
	}
	return e
}

// apply applies writes to practice and fails the test on error.
func (e *env) apply(practice string, ws ...dtm.Write) dtm.Commit {
	e.t.Helper()
	c, err := e.s.Apply(e.ctx, practice, ws)
	if err != nil {
		e.t.Fatalf("Apply(%s, %d writes): %v", practice, len(ws), err)
	}
	return c
}

// head returns Head and fails the test on error.
func (e *env) head() dtm.Snapshot {
	e.t.Helper()
	h, err := e.s.Head(e.ctx)
	if err != nil {
		e.t.Fatalf("Head: %v", err)
	}
	return h
}

// changes returns what Changes reports, failing the test on error.
func (e *env) changes(q dtm.ChangeQuery) []dtm.Change {
	e.t.Helper()
	var out []dtm.Change
	if err := e.s.Changes(e.ctx, q, func(c dtm.Change) error { out = append(out, c); return nil }); err != nil {
		e.t.Fatalf("Changes(%+v): %v", q, err)
	}
	return out
}

// compartment returns what Compartment reports, failing the test on error.
func (e *env) compartment(practice, patient string, at int64) []dtm.Change {
	e.t.Helper()
	var out []dtm.Change
	if err := e.s.Compartment(e.ctx, practice, patient, at, func(c dtm.Change) error { out = append(out, c); return nil }); err != nil {
		e.t.Fatalf("Compartment(%s, %d): %v", practice, at, err)
	}
	return out
}

// wantCode fails the test unless err carries the dtm error code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := dtm.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (err %v), want %q", got, err, code)
	}
}

// Upsert returns an upsert write.
func Upsert(typ, id, patient string, json []byte) dtm.Write {
	return dtm.Write{Type: typ, ID: id, Op: dtm.OpUpsert, JSON: json, Patient: patient}
}

// Delete returns a delete write.
func Delete(typ, id string) dtm.Write {
	return dtm.Write{Type: typ, ID: id, Op: dtm.OpDelete}
}

// PatientJSON returns a small UK Core-shaped Patient resource.
func PatientJSON(id, family string) []byte {
	return fmt.Appendf(nil, `{"resourceType":"Patient","id":%q,"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"name":[{"family":%q,"given":["Alex"]}],"gender":"unknown","birthDate":"1970-01-01"}`, id, family)
}

// PatientWrite returns an upsert of PatientJSON(id, family) in its own
// compartment, registered, as the ingest layer makes it.
func PatientWrite(id, family string) dtm.Write {
	w := Upsert("Patient", id, id, PatientJSON(id, family))
	w.Member = true
	return w
}

// ObservationJSON returns a small Observation of patient with the given
// value literal (written exactly as given, e.g. "5.60").
func ObservationJSON(id, patient, value string) []byte {
	return fmt.Appendf(nil, `{"resourceType":"Observation","id":%q,"status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"1022441000000108"}]},"subject":{"reference":"Patient/%s"},"valueQuantity":{"value":%s,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}}`, id, patient, value)
}

// ObservationWrite returns an upsert of ObservationJSON in patient's
// compartment.
func ObservationWrite(id, patient, value string) dtm.Write {
	return Upsert("Observation", id, patient, ObservationJSON(id, patient, value))
}

// label names a change for test messages: "Type/id v3 upsert @7".
func label(c dtm.Change) string {
	return fmt.Sprintf("%s/%s v%d %s @%d", c.Type, c.ID, c.Version, c.Op, c.Seq)
}

// labels returns label of each change.
func labels(cs []dtm.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = label(c)
	}
	return out
}

// brief is what tests compare of a change: "Type/id v3 upsert".
func brief(cs []dtm.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%s/%s v%d %s", c.Type, c.ID, c.Version, c.Op)
	}
	return out
}
