package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/bulk"
	"github.com/dtm-project/dtm/postgres"
)

// roundRobin is a minimal load balancer for the replica tests: requests go
// to the backends in turn, and a backend that refuses connections is
// skipped (what a load balancer's health check achieves), so a stopped
// replica takes no traffic. Request bodies are buffered so that a refused
// request can go to the next backend. It is safe for concurrent use.
type roundRobin struct {
	tr *http.Transport

	mu       sync.Mutex
	backends []string       // host:port
	next     int            // index of the next backend
	served   map[string]int // responses relayed per backend

	files  atomic.Int64
	onFile func(n int64) // called before relaying export file request n (from 1); may be nil
}

func newRoundRobin(backends ...string) *roundRobin {
	return &roundRobin{tr: &http.Transport{DisableCompression: true}, backends: backends, served: map[string]int{}}
}

// set replaces the backend old with new (or adds new when old is "").
func (p *roundRobin) set(old, new string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, b := range p.backends {
		if b == old {
			p.backends[i] = new
			return
		}
	}
	p.backends = append(p.backends, new)
}

// pick returns the next backend and how many there are.
func (p *roundRobin) pick() (string, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.backends[p.next%len(p.backends)]
	p.next++
	return b, len(p.backends)
}

// size returns the number of backends.
func (p *roundRobin) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.backends)
}

// servedBy returns how many responses backend relayed.
func (p *roundRobin) servedBy(backend string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served[backend]
}

func (p *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read request", http.StatusBadRequest)
		return
	}
	if p.onFile != nil && isExportFile(r.URL.Path) {
		p.onFile(p.files.Add(1))
	}
	for range p.size() {
		backend, _ := p.pick()
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = "http", backend
		out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		resp, err := p.tr.RoundTrip(out)
		if errors.Is(err, syscall.ECONNREFUSED) {
			continue // stopped: try the next replica
		}
		if err != nil {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		if _, err := io.Copy(w, resp.Body); err != nil {
			panic(http.ErrAbortHandler) // the replica went away mid-response: so does this one
		}
		p.mu.Lock()
		p.served[backend]++
		p.mu.Unlock()
		return
	}
	http.Error(w, "no replica available", http.StatusServiceUnavailable)
}

// isExportFile reports whether path is an export file URL
// (/fhir/_export/{job}/{file}).
func isExportFile(path string) bool {
	rest, ok := strings.CutPrefix(path, "/fhir/_export/")
	return ok && strings.Contains(rest, "/")
}

// pinned sends every request to one replica's address, whatever host its
// URL names: the client addresses the load balancer's URL (the token
// audience, Content-Location and file URLs are built on it) but the test
// chooses the replica.
type pinned struct {
	host string
	base http.RoundTripper
}

func (p pinned) RoundTrip(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.URL.Host = p.host
	return p.base.RoundTrip(out)
}

// crashable is replica A's view of the shared PostgreSQL store in the
// crash test: once hold is set, the first journal read (the export
// planner's) blocks until the replica crashes, and after crash every job
// call fails, as it would for a process that has died (so the replica
// cannot release its lease on the way out).
type crashable struct {
	*postgres.DB
	hold     atomic.Bool
	planning chan struct{} // closed when a held read starts
	once     sync.Once
	crashed  chan struct{}
	holder   atomic.Value // the lease holder id of the last claim (string)
}

var errCrashed = errors.New("replica crashed")

func newCrashable(db *postgres.DB) *crashable {
	return &crashable{DB: db, planning: make(chan struct{}), crashed: make(chan struct{})}
}

func (c *crashable) dead() bool {
	select {
	case <-c.crashed:
		return true
	default:
		return false
	}
}

// held blocks a journal read while hold is set, until the crash, and
// reports whether the read must fail.
func (c *crashable) held(ctx context.Context) bool {
	if c.hold.Load() {
		c.once.Do(func() { close(c.planning) })
		select {
		case <-c.crashed:
		case <-ctx.Done():
		}
		return true
	}
	return c.dead()
}

func (c *crashable) Changes(ctx context.Context, q dtm.ChangeQuery, fn func(dtm.Change) error) error {
	if c.held(ctx) {
		return errCrashed
	}
	return c.DB.Changes(ctx, q, fn)
}

// ChangeHeaders is the planner's header-only read (bulk.HeaderLister),
// held like Changes.
func (c *crashable) ChangeHeaders(ctx context.Context, q dtm.ChangeQuery, fn func(dtm.Change) error) error {
	if c.held(ctx) {
		return errCrashed
	}
	if hl, ok := any(c.DB).(bulk.HeaderLister); ok {
		return hl.ChangeHeaders(ctx, q, fn)
	}
	return c.DB.Changes(ctx, q, fn)
}

func (c *crashable) ClaimJob(ctx context.Context, holder string, now, leaseUntil time.Time) (dtm.ExportJob, bool, error) {
	if c.dead() {
		return dtm.ExportJob{}, false, errCrashed
	}
	job, ok, err := c.DB.ClaimJob(ctx, holder, now, leaseUntil)
	if ok {
		c.holder.Store(holder)
	}
	return job, ok, err
}

func (c *crashable) Job(ctx context.Context, id string) (dtm.ExportJob, error) {
	if c.dead() {
		return dtm.ExportJob{}, errCrashed
	}
	return c.DB.Job(ctx, id)
}

func (c *crashable) UpdateJob(ctx context.Context, job dtm.ExportJob) error {
	if c.dead() {
		return errCrashed
	}
	return c.DB.UpdateJob(ctx, job)
}

// replica is one "dtm source serve" (newSourceServer, the composition the
// command serves) on its own loopback port.
type replica struct {
	name string
	addr string // host:port
	hs   *httptest.Server
	run  func(context.Context) error

	mu     sync.Mutex
	cancel context.CancelFunc // of the running workers; nil when stopped
	done   chan struct{}
	once   sync.Once
}

// startWorkers starts the replica's background work (export planning,
// token pruning) until stopWorkers or stop.
func (r *replica) startWorkers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	done := r.done
	go func() { defer close(done); r.run(ctx) }()
}

// stopWorkers stops the background work and waits for it to end; a job
// being planned is released for another replica.
func (r *replica) stopWorkers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// stop ends the replica abruptly: connections in flight are cut, the
// listener is closed and the workers are stopped. It is idempotent.
func (r *replica) stop() {
	r.once.Do(func() {
		r.hs.CloseClientConnections()
		r.hs.Close()
	})
	r.stopWorkers()
}

// gunzipIf decodes body when the response was gzip-encoded.
func gunzipIf(h http.Header, body []byte) ([]byte, error) {
	if h.Get("Content-Encoding") != "gzip" {
		return body, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
