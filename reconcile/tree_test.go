package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/reconcile"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// randomHistory applies batches of random changes to a small practice:
// patients registering, deducted, deleted and coming back; observations
// created, changed, moved between patients and deleted; resources in no
// compartment changing. It returns the snapshot after each batch.
func randomHistory(t *testing.T, s dtm.Store, r *rand.Rand, batches int) []dtm.Snapshot {
	t.Helper()
	var snaps []dtm.Snapshot
	for b := range batches {
		var ws []dtm.Write
		for range 1 + r.IntN(12) {
			switch n := r.IntN(10); {
			case n < 2:
				p := fmt.Sprintf("p%d", r.IntN(8))
				member := r.IntN(4) > 0
				ws = append(ws, dtm.Write{Type: "Patient", ID: p, Patient: p, Member: member,
					JSON: fmt.Appendf(nil, `{"resourceType":"Patient","id":%q,"active":%t,"gender":"unknown","birthDate":"19%02d-01-01"}`, p, member, r.IntN(100))})
			case n < 3:
				ws = append(ws, dtm.Write{Type: "Patient", ID: fmt.Sprintf("p%d", r.IntN(8)), Op: dtm.OpDelete})
			case n < 7:
				o, p := fmt.Sprintf("o%d", r.IntN(40)), fmt.Sprintf("p%d", r.IntN(9)) // p8 never has a Patient
				ws = append(ws, dtm.Write{Type: "Observation", ID: o, Patient: p,
					JSON: fmt.Appendf(nil, `{"resourceType":"Observation","id":%q,"status":"final","code":{"text":"x"},"subject":{"reference":"Patient/%s"},"valueInteger":%d}`, o, p, r.IntN(5))})
			case n < 8:
				ws = append(ws, dtm.Write{Type: "Observation", ID: fmt.Sprintf("o%d", r.IntN(40)), Op: dtm.OpDelete})
			case n < 9:
				id := fmt.Sprintf("prac%d", r.IntN(4))
				ws = append(ws, dtm.Write{Type: "Practitioner", ID: id,
					JSON: fmt.Appendf(nil, `{"resourceType":"Practitioner","id":%q,"name":[{"family":"F%d"}]}`, id, r.IntN(3))})
			default:
				ws = append(ws, dtm.Write{Type: "Practitioner", ID: fmt.Sprintf("prac%d", r.IntN(4)), Op: dtm.OpDelete})
			}
		}
		if _, err := s.Apply(context.Background(), ods, ws); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		h, _ := s.Head(context.Background())
		snaps = append(snaps, h)
	}
	return snaps
}

var treeCmp = cmp.Options{cmpopts.EquateEmpty()}

func TestAdvance(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	r := rand.New(rand.NewPCG(1, 2))
	snaps := randomHistory(t, s, r, 40)
	trees := map[int64]reconcile.Tree{}
	for _, snap := range snaps {
		tr, err := reconcile.ComputeTree(ctx, s, ods, snap)
		if err != nil {
			t.Fatal(err)
		}
		trees[snap.Seq] = tr
	}
	defer reconcile.SetMaxTouched(2)() // always incremental
	for n := range 200 {
		from, to := snaps[r.IntN(len(snaps))], snaps[r.IntN(len(snaps))]
		got, err := reconcile.Advance(ctx, s, trees[from.Seq], to)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(trees[to.Seq], got, treeCmp); diff != "" {
			t.Fatalf("case %d: Advance from %d to %d (-want +got):\n%s", n, from.Seq, to.Seq, diff)
		}
	}
	t.Run("JSON", func(t *testing.T) {
		first, last := snaps[5], snaps[len(snaps)-1]
		b, err := json.Marshal(trees[first.Seq])
		if err != nil {
			t.Fatal(err)
		}
		var tr reconcile.Tree
		if err := json.Unmarshal(b, &tr); err != nil {
			t.Fatal(err)
		}
		if ok, err := tr.Check(ctx, s, ods); !ok || err != nil {
			t.Fatalf("Check of a tree read back: %v, %v", ok, err)
		}
		got, err := reconcile.Advance(ctx, s, tr, last)
		if err != nil || got.Digest.Root != trees[last.Seq].Digest.Root {
			t.Fatalf("advancing a tree read back: %v", err)
		}
	})
	t.Run("CheckOtherJournal", func(t *testing.T) {
		other := mustStore(t)
		randomHistory(t, other, rand.New(rand.NewPCG(3, 4)), 5)
		if ok, _ := trees[snaps[3].Seq].Check(ctx, other, ods); ok {
			t.Fatal("a tree checked out against another journal")
		}
		if ok, _ := trees[snaps[3].Seq].Check(ctx, s, "B00000"); ok {
			t.Fatal("a tree checked out for another practice")
		}
	})
}
