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
// not cached. A caller whose ctx ends stops waiting (the computation,
// running on the first caller's context, goes on for it).
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

	e.d, e.kept, e.err = fn()
	close(e.done)
	if e.err != nil {
		c.mu.Lock()
		if c.entries[k] == e {
			delete(c.entries, k)
			for i, o := range c.order {
				if o == k {
					c.order = append(c.order[:i], c.order[i+1:]...)
					break
				}
			}
		}
		c.mu.Unlock()
	}
	return e.d, e.kept, false, e.err
}
