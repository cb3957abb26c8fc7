package reconcile_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/reconcile"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/storetest"
	"github.com/google/go-cmp/cmp"
)

const ods = "A81001"

// mustStore opens a SQLite store with the practice registered.
func mustStore(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "dtm.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.CreatePractice(context.Background(), dtm.Practice{ODS: ods}); err != nil {
		tb.Fatal(err)
	}
	return db
}

func mustApply(tb testing.TB, s dtm.Store, ws ...dtm.Write) dtm.Snapshot {
	tb.Helper()
	c, err := s.Apply(context.Background(), ods, ws)
	if err != nil {
		tb.Fatal(err)
	}
	h, _ := s.Head(context.Background())
	_ = c
	return h
}

// naive computes the digest as docs/RECONCILIATION.md defines it, with
// strings, from the live state.
func naive(live []dtm.Change, excluded map[string]bool) (root string, buckets map[string]string) {
	lines := map[string][]string{}
	for _, c := range live {
		if excluded[c.Patient] && c.Type != "Patient" {
			continue
		}
		lines[c.Patient] = append(lines[c.Patient], c.Type+"/"+c.ID+"/"+c.Hash+"\n")
	}
	buckets = map[string]string{}
	var rootLines []string
	for p, ls := range lines {
		sort.Strings(ls)
		sum := sha256.Sum256([]byte(strings.Join(ls, "")))
		buckets[p] = hex.EncodeToString(sum[:])
		rootLines = append(rootLines, p+":"+buckets[p]+"\n")
	}
	sort.Strings(rootLines)
	sum := sha256.Sum256([]byte(strings.Join(rootLines, "")))
	return hex.EncodeToString(sum[:]), buckets
}

func live(tb testing.TB, s dtm.Store, at int64) []dtm.Change {
	var out []dtm.Change
	err := s.Changes(context.Background(), dtm.ChangeQuery{Practice: ods, Until: at}, func(c dtm.Change) error {
		if c.Op == dtm.OpUpsert {
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestCompute(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	org := storetest.Upsert("Organization", "org-1", "", []byte(`{"resourceType":"Organization","id":"org-1","name":"X"}`))
	mustApply(t, s, org,
		storetest.PatientWrite("p1", "One"), storetest.PatientWrite("p2", "Two"), storetest.PatientWrite("p-1", "Dash"),
		storetest.ObservationWrite("o1", "p1", "5.60"), storetest.ObservationWrite("o2", "p1", "1"),
		storetest.ObservationWrite("o-1", "p1", "2"), storetest.ObservationWrite("o3", "p2", "3"),
		storetest.ObservationWrite("o4", "ghost", "4")) // a compartment with no Patient: in scope
	first := mustApply(t, s, storetest.ObservationWrite("o5", "p-1", "5"))
	// Deduct p2 and delete p-1: their compartments leave Group scope.
	deducted := storetest.PatientWrite("p2", "Two")
	deducted.Member = false
	deducted.JSON = []byte(`{"resourceType":"Patient","id":"p2","active":false}`)
	second := mustApply(t, s, deducted, storetest.Delete("Patient", "p-1"), storetest.ObservationWrite("o2", "p1", "1.0"))

	t.Run("OK", func(t *testing.T) {
		for _, snap := range []dtm.Snapshot{first, second} {
			d, kept, err := reconcile.Compute(ctx, s, ods, snap, func(p string) bool { return p == dtm.NoPatient })
			if err != nil {
				t.Fatal(err)
			}
			excluded := map[string]bool{}
			if snap == second {
				excluded = map[string]bool{"p2": true, "p-1": true}
			}
			root, buckets := naive(live(t, s, snap.Seq), excluded)
			if d.Root != root || !cmp.Equal(d.Buckets, buckets) {
				t.Fatalf("at %d: digest %+v, want root %s buckets %v", snap.Seq, d, root, buckets)
			}
			if d.Snapshot != snap || d.Practice != ods {
				t.Errorf("snapshot %+v practice %s", d.Snapshot, d.Practice)
			}
			if len(kept) != 1 || len(kept[dtm.NoPatient]) != 1 || kept[dtm.NoPatient][0].ID != "org-1" {
				t.Errorf("kept %+v", kept)
			}
			for p, want := range d.Buckets {
				es, err := reconcile.Bucket(ctx, s, ods, p, snap.Seq)
				if err != nil {
					t.Fatal(err)
				}
				if got := reconcile.BucketDigest(es); got != want {
					t.Errorf("at %d: Bucket(%q) digest %s, want %s (%d entries)", snap.Seq, p, got, want, len(es))
				}
			}
		}
	})
	t.Run("Scope", func(t *testing.T) {
		d, _, err := reconcile.Compute(ctx, s, ods, second, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{"Organization": 1, "Patient": 2, "Observation": 4}
		if !cmp.Equal(d.Counts, want) || d.Total != 7 || d.Excluded != 2 {
			t.Fatalf("counts %v total %d excluded %d, want %v, 7, 2", d.Counts, d.Total, d.Excluded, want)
		}
		if _, ok := d.Buckets["p-1"]; ok {
			t.Errorf("deleted patient's bucket present")
		}
		es, _ := reconcile.Bucket(ctx, s, ods, "p2", second.Seq)
		if len(es) != 1 || es[0].Type != "Patient" {
			t.Errorf("deducted patient's bucket = %+v, want only the Patient", es)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		d, _, err := reconcile.Compute(ctx, s, ods, dtm.Snapshot{}, nil)
		if err != nil || d.Total != 0 || len(d.Buckets) != 0 || d.Root != reconcile.RootDigest(nil) {
			t.Fatalf("empty digest %+v, %v", d, err)
		}
	})
	t.Run("ErrHash", func(t *testing.T) {
		b := reconcile.NewBuilder(ods, dtm.Snapshot{}, nil)
		b.Add(dtm.Change{Type: "Patient", ID: "x", Hash: "not-hex"})
		if _, _, err := b.Finish(); dtm.ErrorCode(err) != dtm.EInternal {
			t.Fatalf("Finish = %v, want an internal error", err)
		}
	})
}

func TestBucketDigest_Order(t *testing.T) {
	// '-' sorts before '/', so "a-b" comes before "a" in line order even
	// though "a" < "a-b" as ids.
	h := strings.Repeat("0", 64)
	es := []dtm.DigestEntry{{Type: "Observation", ID: "a", Hash: h}, {Type: "Observation", ID: "a-b", Hash: h}, {Type: "Obs", ID: "z", Hash: h}}
	got := reconcile.SortEntries(slices.Clone(es))
	var ids []string
	for _, e := range got {
		ids = append(ids, e.Type+"/"+e.ID)
	}
	if want := []string{"Obs/z", "Observation/a-b", "Observation/a"}; !slices.Equal(ids, want) {
		t.Fatalf("order %v, want %v", ids, want)
	}
	lines := "Obs/z/" + h + "\nObservation/a-b/" + h + "\nObservation/a/" + h + "\n"
	sum := sha256.Sum256([]byte(lines))
	if d := reconcile.BucketDigest(es); d != hex.EncodeToString(sum[:]) {
		t.Fatalf("BucketDigest = %s", d)
	}
	b := reconcile.NewBuilder(ods, dtm.Snapshot{}, nil)
	for _, e := range es {
		b.Add(dtm.Change{Type: e.Type, ID: e.ID, Hash: e.Hash, Patient: "p"})
	}
	d, _, err := b.Finish()
	if err != nil || d.Buckets["p"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("Builder bucket %v, %v", d.Buckets, err)
	}
}

func TestCompare(t *testing.T) {
	e := func(typ, id, hash string) dtm.DigestEntry {
		return dtm.DigestEntry{Type: typ, ID: id, Version: 1, Hash: hash}
	}
	src := reconcile.Side{"p1": {e("Patient", "p1", "a"), e("Observation", "o1", "b"), e("Observation", "o2", "c")}, "p2": {e("Observation", "o9", "x")}}
	tgt := reconcile.Side{"p1": {e("Patient", "p1", "a"), e("Observation", "o1", "B"), e("Observation", "o3", "d")}, "p3": {e("Observation", "o9", "x")}}
	var got []string
	for _, d := range reconcile.Compare(src, tgt) {
		got = append(got, fmt.Sprintf("%s %s %s>%s", d.Kind, d.Resource, d.SourceBucket, d.TargetBucket))
	}
	want := []string{"different Observation/o1 p1>p1", "missing Observation/o2 p1>", "extra Observation/o3 >p1", "different Observation/o9 p2>p3"}
	if !cmp.Equal(got, want) {
		t.Fatalf("Compare:\n%s", cmp.Diff(want, got))
	}
	if b := reconcile.DifferentBuckets(map[string]string{"a": "1", "b": "2"}, map[string]string{"a": "1", "b": "3", "c": "4"}); !slices.Equal(b, []string{"b", "c"}) {
		t.Errorf("DifferentBuckets = %v", b)
	}
	if c := reconcile.DifferentCounts(map[string]int64{"A": 1, "B": 2}, map[string]int64{"A": 1, "C": 1}); !slices.Equal(c, []string{"B", "C"}) {
		t.Errorf("DifferentCounts = %v", c)
	}
}
