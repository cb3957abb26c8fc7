package source

import (
	"context"
	"sync"

	"github.com/dtm-project/dtm"
)

// digestCacheSize is how many digests a DigestServer keeps: a digest of a
// snapshot never changes, and a reconcile asks for one digest and then
// drills into its buckets.
const digestCacheSize = 4

type digestKey struct {
	practice string
	seq      int64
}

// digestCache keeps the latest digests computed and makes concurrent
// requests for the same one wait for a single computation. The zero value
// is ready to use.
type digestCache struct {
	mu      sync.Mutex
	entries map[digestKey]*digestEntry
	order   []digestKey // oldest first
}

type digestEntry struct {
	done chan struct{}
	d    dtm.Digest
	kept map[string][]dtm.DigestEntry
	err  error
}

// get returns the cached digest for k, or computes it with fn; hit is true
// when it was cached or being computed already. A failed computation is
// not cached. A caller whose ctx ends stops waiting; the computation goes
// on (fn should not depend on that caller's context), so that the next
// caller finds it.
func (c *digestCache) get(ctx context.Context, k digestKey, fn func() (dtm.Digest, map[string][]dtm.DigestEntry, error)) (dtm.Digest, map[string][]dtm.DigestEntry, bool, error) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[digestKey]*digestEntry{}
	}
	if e, ok := c.entries[k]; ok {
		c.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return dtm.Digest{}, nil, true, ctx.Err()
		}
		if e.err != nil {
			return dtm.Digest{}, nil, true, e.err
		}
		return e.d, e.kept, true, nil
	}
	e := &digestEntry{done: make(chan struct{})}
	c.entries[k] = e
	c.order = append(c.order, k)
	if len(c.order) > digestCacheSize {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	c.mu.Unlock()

	go func() {
		e.d, e.kept, e.err = fn()
		if e.err != nil {
			c.forget(k, e)
		}
		close(e.done)
	}()
	select {
	case <-e.done:
	case <-ctx.Done():
		return dtm.Digest{}, nil, false, ctx.Err()
	}
	return e.d, e.kept, false, e.err
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
