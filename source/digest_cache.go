package source

import (
	"context"
	"sync"

	"github.com/dtm-project/dtm/reconcile"
)

// digestCacheSize is how many digest trees a DigestServer keeps: a digest
// of a snapshot never changes, a reconcile asks for one digest and then
// drills into its buckets, and the next snapshot's digest is computed from
// the previous one's (reconcile.Advance).
const digestCacheSize = 4

type digestKey struct {
	practice string
	seq      int64
}

// digestCache keeps the latest digest trees computed and makes concurrent
// requests for the same one wait for a single computation. The zero value
// is ready to use.
type digestCache struct {
	mu      sync.Mutex
	entries map[digestKey]*digestEntry
	order   []digestKey // oldest first
}

type digestEntry struct {
	done chan struct{}
	tree reconcile.Tree
	err  error
}

// get returns the cached tree for k, or computes it with fn, which is
// given the most recently cached tree of the same practice (ok false when
// there is none) to start from; hit is true when it was cached or being
// computed already. A failed computation is not cached. A caller whose ctx
// ends stops waiting; the computation goes on (fn should not depend on
// that caller's context), so that the next caller finds it.
func (c *digestCache) get(ctx context.Context, k digestKey, fn func(base reconcile.Tree, ok bool) (reconcile.Tree, error)) (reconcile.Tree, bool, error) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[digestKey]*digestEntry{}
	}
	if e, ok := c.entries[k]; ok {
		c.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return reconcile.Tree{}, true, ctx.Err()
		}
		return e.tree, true, e.err
	}
	base, baseOK := c.latest(k.practice)
	e := &digestEntry{done: make(chan struct{})}
	c.entries[k] = e
	c.order = append(c.order, k)
	if len(c.order) > digestCacheSize {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	c.mu.Unlock()

	go func() {
		e.tree, e.err = fn(base, baseOK)
		if e.err != nil {
			c.forget(k, e)
		}
		close(e.done)
	}()
	select {
	case <-e.done:
	case <-ctx.Done():
		return reconcile.Tree{}, false, ctx.Err()
	}
	return e.tree, false, e.err
}

// latest returns the most recently added tree of the practice that is
// computed. The caller holds c.mu.
func (c *digestCache) latest(practice string) (reconcile.Tree, bool) {
	for i := len(c.order) - 1; i >= 0; i-- {
		k := c.order[i]
		if k.practice != practice {
			continue
		}
		e := c.entries[k]
		select {
		case <-e.done:
			if e.err == nil {
				return e.tree, true
			}
		default:
		}
	}
	return reconcile.Tree{}, false
}

// forget removes e, which failed, unless it was replaced already.
func (c *digestCache) forget(k digestKey, e *digestEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[k] == e {
		delete(c.entries, k)
		for i, o := range c.order {
			if o == k {
				c.order = append(c.order[:i], c.order[i+1:]...)
				break
			}
		}
	}
}
