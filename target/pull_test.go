package target_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/target"
)

func quietLogger() *slog.Logger {
	if os.Getenv("DTM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// liveState returns the current state of every live resource of the
// practice, keyed "Type/id".
func liveState(tb testing.TB, s dtm.Store) map[string]dtm.Change {
	tb.Helper()
	ctx := context.Background()
	head, err := s.Head(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]dtm.Change{}
	err = s.Changes(ctx, dtm.ChangeQuery{Practice: testODS, Until: head.Seq}, func(c dtm.Change) error {
		if c.Op == dtm.OpUpsert {
			out[c.Type+"/"+c.ID] = c
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// assertMigrated checks the target holds what a Group export of the source
// carries: every live resource outside the compartments of non-member
// patients, with exactly the source's JSON (invariant 6), and nothing the
// source has deleted. Resources of non-member (deducted) patients may lag.
func assertMigrated(tb testing.TB, src, tgt dtm.Store) {
	tb.Helper()
	want, got := liveState(tb, src), liveState(tb, tgt)
	outside := func(c dtm.Change) bool {
		if c.Type == "Patient" || c.Patient == "" {
			return false
		}
		p, ok := want["Patient/"+c.Patient]
		return ok && !p.Member
	}
	var missing, differ, extra int
	for k, w := range want {
		g, ok := got[k]
		switch {
		case outside(w):
		case !ok:
			missing++
		case !bytes.Equal(g.JSON, w.JSON) || g.Hash != w.Hash || g.Version != w.Version:
			differ++
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && !outside(g) {
			extra++
		}
	}
	if missing+differ+extra > 0 {
		tb.Fatalf("target differs from source: %d missing, %d differ, %d extra (of %d)", missing, differ, extra, len(want))
	}
}

func TestPuller_Pull(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := mustSource(t, map[bool]int{false: 10, true: 4}[raceEnabled])
	tgt := mustOpen(t, filepath.Join(t.TempDir(), "target.db"))
	p := pullerFor(t, src.url, tgt, t.TempDir(), true)

	first, err := p.Pull(ctx, testODS)
	if err != nil {
		t.Fatal(err)
	}
	assertMigrated(t, src.db, tgt)
	n := int64(len(liveState(t, src.db)))
	c := first.Counts
	if c.Received != n || c.Applied != n || c.Quarantined != 0 || first.Status != dtm.PullComplete || first.Resumed {
		t.Fatalf("first pull: %d resources at source, result %+v", n, first.PullRecord)
	}
	if c.Attachments == 0 || c.AttachmentProblems != 0 {
		t.Fatalf("attachments verified %d, problems %d", c.Attachments, c.AttachmentProblems)
	}
	if first.SourceFreshness == "" || first.SourceLastUpdated.IsZero() {
		t.Fatalf("freshness not recorded: %+v", first.PullRecord)
	}

	t.Run("Delta", func(t *testing.T) {
		changes := src.change(t, 10, 5, 2)
		second, err := p.Pull(ctx, testODS)
		if err != nil {
			t.Fatal(err)
		}
		assertMigrated(t, src.db, tgt)
		if !second.Since.Equal(first.TransactionTime) {
			t.Fatalf("second pull _since %v, want first transactionTime %v", second.Since, first.TransactionTime)
		}
		if c := second.Counts; c.Received != int64(changes) || c.Applied != c.Received || c.Deleted != 5 {
			t.Fatalf("delta of %d changes moved %+v", changes, c)
		}
	})
	t.Run("Serve", func(t *testing.T) { testServe(t, src.db, tgt) })
	t.Run("NothingNew", func(t *testing.T) {
		third, err := p.Pull(ctx, testODS)
		if err != nil {
			t.Fatal(err)
		}
		if third.Counts.Received != 0 {
			t.Fatalf("empty delta moved %+v", third.Counts)
		}
	})
}

// TestPuller_ExpiredExport resumes a pull whose export the source no longer
// knows: the puller starts a new export with the same _since and completes.
func TestPuller_ExpiredExport(t *testing.T) {
	t.Parallel()
	src := mustSource(t, 2)
	tgt := mustOpen(t, filepath.Join(t.TempDir(), "target.db"))
	stale := dtm.PullRecord{ID: "stale", Source: src.url, Practice: testODS, Status: dtm.PullKickedOff,
		StatusURL: src.url + "/fhir/_export/GONE", StartedAt: time.Now().Add(-48 * time.Hour)}
	if err := tgt.SavePull(t.Context(), stale); err != nil {
		t.Fatal(err)
	}
	res, err := pullerFor(t, src.url, tgt, t.TempDir(), false).Pull(t.Context(), testODS)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || !res.Restarted || res.ID == "stale" || !res.Since.IsZero() {
		t.Fatalf("result %+v", res)
	}
	if old, err := tgt.Pull(t.Context(), "stale"); err != nil || old.Status != dtm.PullAbandoned {
		t.Fatalf("stale pull %+v, %v", old, err)
	}
	assertMigrated(t, src.db, tgt)
}

// TestPuller_Lock refuses a second pull of a practice while one runs.
func TestPuller_Lock(t *testing.T) {
	t.Parallel()
	src := mustSource(t, 1)
	work := t.TempDir()
	a := pullerFor(t, src.url, mustOpen(t, filepath.Join(t.TempDir(), "a.db")), work, false)
	b := pullerFor(t, src.url, mustOpen(t, filepath.Join(t.TempDir(), "b.db")), work, false)
	unlock, err := target.LockForTest(a, testODS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Pull(t.Context(), testODS); dtm.ErrorCode(err) != dtm.EConflict {
		t.Fatalf("second pull: %v, want a conflict", err)
	}
	unlock()
	if _, err := b.Pull(t.Context(), testODS); err != nil {
		t.Fatal(err)
	}
}
