package cutover_test

import (
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/cutover"
)

func TestJournalReconciler(t *testing.T) {
	e := newEnv(t, 5, utc("2026-01-05T09:00:00Z"))
	res := e.pull()
	r := cutover.JournalReconciler{Source: e.src, Target: e.tgt, State: e.tgt, Clock: e.clock}
	ctx := t.Context()
	t.Run("Match", func(t *testing.T) {
		s, err := r.Reconcile(ctx, testODS, res.TransactionTime)
		if err != nil || !s.Match || s.SourceTotal == 0 || s.SourceRoot != s.TargetRoot || s.Method != "digest" {
			t.Fatalf("summary = %+v, %v", s, err)
		}
	})
	var obs []dtm.Change
	head, _ := e.tgt.Head(ctx)
	err := e.tgt.Changes(ctx, dtm.ChangeQuery{Practice: testODS, Type: "Observation", Until: head.Seq}, func(c dtm.Change) error {
		obs = append(obs, c)
		return nil
	})
	if err != nil || len(obs) < 3 {
		t.Fatalf("observations: %d, %v", len(obs), err)
	}
	// The target loses one resource, quarantined another, and gains one.
	lost, kept := obs[0], obs[1]
	extra := dtm.Write{Type: "Organization", ID: "stray", JSON: []byte(`{"resourceType":"Organization","id":"stray"}`)}
	if _, err := e.tgt.Apply(ctx, testODS, []dtm.Write{{Type: lost.Type, ID: lost.ID, Op: dtm.OpDelete},
		{Type: kept.Type, ID: kept.ID, Op: dtm.OpDelete}, extra}); err != nil {
		t.Fatal(err)
	}
	if err := e.tgt.Quarantine(ctx, []dtm.QuarantineRecord{{Pull: "p", Practice: testODS, Reason: dtm.QuarantineInvalid,
		Type: kept.Type, ID: kept.ID, At: e.clock.Now()}}); err != nil {
		t.Fatal(err)
	}
	t.Run("Differences", func(t *testing.T) {
		s, err := r.Reconcile(ctx, testODS, res.TransactionTime)
		if err != nil || s.Match || s.Missing != 1 || s.Quarantined != 1 || s.Extra != 1 || s.Different != 0 {
			t.Fatalf("summary = %+v, %v", s, err)
		}
	})
}
