package bulk

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/storetest"
	"github.com/google/go-cmp/cmp"
)

func TestSplitRange(t *testing.T) {
	for _, tt := range []struct {
		from, to int64
		n        int
		min      int64
		want     [][2]int64
	}{
		{0, 10, 1, 1, [][2]int64{{0, 10}}},
		{0, 10, 4, 100, [][2]int64{{0, 10}}},
		{0, 10, 3, 1, [][2]int64{{0, 4}, {4, 8}, {8, 10}}},
		{5, 7, 4, 1, [][2]int64{{5, 6}, {6, 7}}},
		{5, 5, 4, 0, nil},
	} {
		if got := splitRange(tt.from, tt.to, tt.n, tt.min); !cmp.Equal(tt.want, got) {
			t.Errorf("splitRange(%d, %d, %d, %d) = %v, want %v", tt.from, tt.to, tt.n, tt.min, got, tt.want)
		}
	}
}

// TestPlanner_ParallelMatchesSerial checks that splitting the journal range
// over concurrent scans yields files holding exactly the same resources as
// one scan, each part within its bound.
func TestPlanner_ParallelMatchesSerial(t *testing.T) {
	e := newTestEnv(t, false, nil)
	e.apply(pA, patient("p1", true), patient("p2", false))
	for i := range 60 {
		w := obs(fmt.Sprint("o", i%40), fmt.Sprint("p", 1+i%2), fmt.Sprint(i))
		if i%7 == 0 {
			w = storetest.Delete("Observation", fmt.Sprint("o", i%40))
		}
		e.apply(pA, w)
	}
	head, _ := e.db.Head(e.ctx)
	job := &dtm.ExportJob{ID: "j", Kind: dtm.ExportGroup, Practices: []string{pA}, Since: 3, Until: head.Seq}
	content := func(parallel int) map[string]int {
		p := &planner{j: e.db, job: job, max: 4, parallel: parallel, minSplit: 1,
			progress: func(context.Context, string) error { return nil }}
		files, err := p.plan(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		job.Files = files
		seen := map[string]int{}
		for _, f := range files {
			if f.Count > 4 {
				t.Errorf("part of %d resources, max 4", f.Count)
			}
			lines := e.srv.fileLines(t, job, f)
			if int64(len(lines)) != f.Count {
				t.Errorf("file %+v has %d lines", f, len(lines))
			}
			for _, l := range lines {
				seen[l]++
			}
		}
		return seen
	}
	serial, parallel := content(1), content(3)
	if d := cmp.Diff(serial, parallel); d != "" || len(serial) == 0 {
		t.Fatalf("parallel plan differs (-serial +parallel):\n%s", d)
	}
	for l, n := range serial {
		if n != 1 {
			t.Errorf("%s in %d files", l, n)
		}
	}
}

// headerJournal implements HeaderLister over a store, dropping the JSON.
type headerJournal struct {
	testStore
	calls atomic.Int64
}

func (h *headerJournal) ChangeHeaders(ctx context.Context, q dtm.ChangeQuery, fn func(dtm.Change) error) error {
	h.calls.Add(1)
	return h.Changes(ctx, q, func(c dtm.Change) error {
		c.JSON = nil
		return fn(c)
	})
}

// TestPlanner_HeaderLister checks that planning uses ChangeHeaders when the
// journal has it, and that files are still whole.
func TestPlanner_HeaderLister(t *testing.T) {
	var hj *headerJournal
	e := newTestEnv(t, true, func(c *Config) {
		hj = &headerJournal{testStore: c.Jobs.(testStore)}
		c.Journal = hj
	})
	e.apply(pA, patient("p1", true), obs("o1", "p1", "1"))
	e.apply(pA, storetest.Delete("Observation", "o1"))
	x := e.export("/fhir/$export")
	if hj.calls.Load() == 0 || len(x.out) != 1 || len(x.deleted) != 1 {
		t.Fatalf("ChangeHeaders calls %d; output %v, deleted %v", hj.calls.Load(), x.keys(), x.deletedKeys())
	}
	if !strings.Contains(string(x.json["Patient/p1"]), `"family"`) {
		t.Fatalf("file lost its JSON: %s", x.json["Patient/p1"])
	}
}

// TestPlanner_TypesMatchFilteredScan checks that planning a _type export
// with per-type scans yields the same content as filtering one scan,
// including deletes of several types merged into shared parts.
func TestPlanner_TypesMatchFilteredScan(t *testing.T) {
	e := newTestEnv(t, false, nil)
	for i := range 30 {
		id := fmt.Sprint(i % 9)
		switch i % 5 {
		case 0:
			e.apply(pA, storetest.Delete("Observation", "o"+id), storetest.Delete("Patient", "p"+id))
		case 1:
			e.apply(pA, practitioner("gp"+id))
		default:
			e.apply(pA, patient("p"+id, true), obs("o"+id, "p"+id, fmt.Sprint(i)))
		}
	}
	head, _ := e.db.Head(e.ctx)
	content := func(types []string) map[string]int {
		job := &dtm.ExportJob{ID: "j", Kind: dtm.ExportSystem, Practices: []string{pA}, Types: types, Since: 4, Until: head.Seq}
		p := &planner{j: e.db, job: job, max: 3, parallel: 2, minSplit: 1,
			progress: func(context.Context, string) error { return nil }}
		files, err := p.plan(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, f := range files {
			lines := e.srv.fileLines(t, job, f)
			if f.Count > 3 || int64(len(lines)) != f.Count {
				t.Errorf("file %+v has %d lines", f, len(lines))
			}
			for _, l := range lines {
				seen[l]++
			}
		}
		return seen
	}
	typed := content([]string{"Observation", "Patient"})
	// The same export by one scan of every type, filtered afterwards.
	all := content(nil)
	for l := range all {
		if strings.Contains(l, `"Practitioner"`) || strings.Contains(l, `Practitioner/`) {
			delete(all, l)
		}
	}
	if d := cmp.Diff(all, typed); d != "" || len(typed) == 0 {
		t.Fatalf("typed plan differs (-filtered +typed):\n%s", d)
	}
}
