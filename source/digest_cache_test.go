package source

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/reconcile"
)

func TestDigestCache(t *testing.T) {
	ctx := context.Background()
	var c digestCache
	var calls atomic.Int64
	slow := func(reconcile.Tree, bool) (reconcile.Tree, error) {
		calls.Add(1)
		time.Sleep(20 * time.Millisecond)
		return reconcile.Tree{Digest: dtm.Digest{Root: "r"}}, nil
	}
	t.Run("OneComputation", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if d, _, err := c.get(ctx, digestKey{"A", 1}, slow); err != nil || d.Digest.Root != "r" {
					t.Errorf("get = %+v, %v", d, err)
				}
			}()
		}
		wg.Wait()
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d computations for one key, want 1", n)
		}
	})
	t.Run("ErrNotCached", func(t *testing.T) {
		boom := errors.New("boom")
		if _, _, err := c.get(ctx, digestKey{"A", 2}, func(reconcile.Tree, bool) (reconcile.Tree, error) {
			return reconcile.Tree{}, boom
		}); !errors.Is(err, boom) {
			t.Fatalf("err %v", err)
		}
		if _, hit, err := c.get(ctx, digestKey{"A", 2}, slow); hit || err != nil {
			t.Fatalf("after a failure: hit %v, err %v", hit, err)
		}
	})
	t.Run("OutlivesCaller", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		defer cancel()
		before := calls.Load()
		if _, _, err := c.get(short, digestKey{"A", 3}, slow); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("impatient caller: %v", err)
		}
		d, hit, err := c.get(ctx, digestKey{"A", 3}, slow)
		if err != nil || !hit || d.Digest.Root != "r" || calls.Load() != before+1 {
			t.Fatalf("next caller: %+v hit %v err %v, %d computations", d, hit, err, calls.Load()-before)
		}
	})
	t.Run("Base", func(t *testing.T) {
		var got reconcile.Tree
		var gotOK bool
		c.get(ctx, digestKey{"B", 9}, func(base reconcile.Tree, ok bool) (reconcile.Tree, error) {
			got, gotOK = base, ok
			return reconcile.Tree{Digest: dtm.Digest{Root: "b9"}}, nil
		})
		if gotOK {
			t.Fatalf("first tree of a practice given a base %+v", got)
		}
		c.get(ctx, digestKey{"B", 12}, func(base reconcile.Tree, ok bool) (reconcile.Tree, error) {
			got, gotOK = base, ok
			return reconcile.Tree{}, nil
		})
		if !gotOK || got.Digest.Root != "b9" {
			t.Fatalf("second tree given base %+v, %v; want the first", got, gotOK)
		}
	})
	t.Run("Evicts", func(t *testing.T) {
		for seq := int64(10); seq < 10+digestCacheSize+2; seq++ {
			c.get(ctx, digestKey{"A", seq}, slow)
		}
		if len(c.entries) != digestCacheSize || len(c.order) != digestCacheSize {
			t.Fatalf("%d entries, %d in order; want %d", len(c.entries), len(c.order), digestCacheSize)
		}
		if _, hit, _ := c.get(ctx, digestKey{"A", 1}, slow); hit {
			t.Fatal("oldest entry still cached")
		}
	})
}
