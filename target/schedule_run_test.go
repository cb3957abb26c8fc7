package target_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/target"
)

func TestPuller_RunSchedule(t *testing.T) {
	t.Parallel()
	src := mustSource(t, 2)
	tgt := mustOpen(t, filepath.Join(t.TempDir(), "target.db"))
	p := pullerFor(t, src.url, tgt, t.TempDir(), false)
	s := target.Schedule{Every: 300 * time.Millisecond, MinInterval: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var pulls []target.PullResult
	err := p.RunSchedule(ctx, testODS, s, func(res target.PullResult, err error) {
		if err != nil {
			t.Errorf("pull: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if pulls = append(pulls, res); len(pulls) == 3 {
			cancel()
		}
	})
	if err != context.Canceled {
		t.Fatalf("RunSchedule returned %v, want context.Canceled", err)
	}
	if len(pulls) != 3 || !pulls[0].Since.IsZero() || pulls[0].Status != dtm.PullComplete {
		t.Fatalf("pulls %+v", pulls)
	}
	for i := 1; i < len(pulls); i++ {
		if gap := pulls[i].StartedAt.Sub(pulls[i-1].StartedAt); gap < s.MinInterval {
			t.Fatalf("pulls %d and %d started %v apart, less than the agreed %v", i-1, i, gap, s.MinInterval)
		}
		if !pulls[i].Since.Equal(pulls[i-1].TransactionTime) {
			t.Fatalf("pull %d _since %v, want %v", i, pulls[i].Since, pulls[i-1].TransactionTime)
		}
	}
	assertMigrated(t, src.db, tgt)
}
