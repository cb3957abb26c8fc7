package network_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/reconcile"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
)

// loadClients is the number of concurrent clients of the load test.
const loadClients = 50

// maxLoadHeap bounds the heap in use during the load test: the memory
// budget of docs/DESIGN (512 MB) for the whole process, which holds the
// source, its store and all 50 clients.
const maxLoadHeap = 512 << 20

// latencies collects operation durations by name. Safe for concurrent use.
type latencies struct {
	mu sync.Mutex
	d  map[string][]time.Duration
}

func (l *latencies) add(op string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.d == nil {
		l.d = map[string][]time.Duration{}
	}
	l.d[op] = append(l.d[op], d)
}

// opStats summarises one operation's latencies.
type opStats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

func (l *latencies) stats() map[string]opStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]opStats{}
	for op, ds := range l.d {
		s := slices.Clone(ds)
		slices.Sort(s)
		q := func(p float64) float64 {
			return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / float64(time.Millisecond)
		}
		out[op] = opStats{N: len(s), P50: q(0.50), P99: q(0.99), Max: q(1)}
	}
	return out
}

// loadReport is what the load test records.
type loadReport struct {
	Clients       int                `json:"clients"`
	Seconds       float64            `json:"seconds"` // from the first kick-off to the last client's end
	Patients      int                `json:"patients"`
	Exports       int64              `json:"exports"` // completed and checked
	Files         int64              `json:"files"`
	Resources     int64              `json:"resources"` // lines downloaded
	Ingested      int64              `json:"ingested"`  // writes committed during the run
	Errors        int64              `json:"errors"`
	LostResources int                `json:"lostResources"`
	PeakHeapMB    float64            `json:"peakHeapMB"`
	PeakRSSMB     float64            `json:"peakRSSMB"`
	GOMAXPROCS    int                `json:"gomaxprocs"`
	Latency       map[string]opStats `json:"latency"`
}

// TestLoad_ConcurrentClients has 50 clients export the practice over and
// over (a full export, then deltas since each one's last transactionTime),
// polling and downloading, for a bounded time against one source while
// ingest continues. Every request must succeed at its first attempt, each
// client's copy must end equal to the source at its last transactionTime,
// and the heap must stay within budget. Latencies are logged (and written
// to $DTM_LOAD_REPORT), never asserted.
//
// It does not run in parallel with the fault tests: it wants the machine.
func TestLoad_ConcurrentClients(t *testing.T) {
	dur, patients := 8*time.Second, 4
	if raceEnabled {
		dur, patients = 3*time.Second, 1
	}
	if long() {
		dur, patients = 60*time.Second, 30
	}
	if s := os.Getenv("DTM_LOAD_SECONDS"); s != "" {
		n, _ := strconv.Atoi(s)
		dur = time.Duration(n) * time.Second
	}
	// Each client is its own caller (by User-Agent), as 50 registered
	// suppliers would be, so that each has its own export allowance.
	src := mustSource(t, sourceOptions{patients: patients, seed: 5, fileSize: 1000, maxActive: 2,
		caller: func(r *http.Request) (string, []string) { return r.UserAgent(), []string{dtm.AllPractices} }})
	rep := loadReport{Clients: loadClients, Patients: patients, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	var lat latencies
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()

	// DTM_LOAD_HEAPPROFILE names a file for a heap profile taken at the peak.
	profile := os.Getenv("DTM_LOAD_HEAPPROFILE")
	var peakHeap, peakRSS atomic.Uint64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if maxStore(&peakHeap, ms.HeapInuse) && profile != "" {
				writeHeapProfile(profile) // the latest peak's
			}
			maxStore(&peakRSS, rss())
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	// Ingest continues throughout, ten batches a second: amendments and
	// deletions through the store writer and, every tenth, a new patient's
	// whole record through the Ingester.
	var ingestErr error
	ingested := make(chan struct{})
	go func() {
		defer close(ingested)
		in := &source.Ingester{Journal: src.db, Logger: quietLogger()}
		for i := 0; ctx.Err() == nil; i++ {
			var buf bytes.Buffer
			var err error
			if i%10 == 0 { // a registration every second
				err = synth.GeneratePatient(src.opts, src.opts.Patients+i, func(_ string, b []byte) error {
					buf.Write(b)
					return buf.WriteByte('\n')
				})
			}
			if err == nil && buf.Len() > 0 {
				var st source.Stats
				st, err = in.Load(context.Background(), ods, "load.ndjson", source.FormatNDJSON, &buf)
				rep.Ingested += int64(st.Applied)
			}
			if err == nil {
				var n int
				n, err = src.tryChange(0, 5, 2, 0)
				rep.Ingested += int64(n)
			}
			if err != nil {
				ingestErr = err
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	start := time.Now()
	var exports, files, resources, errs atomic.Int64
	states := make([]*clientState, loadClients)
	var wg sync.WaitGroup
	for i := range loadClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &clientState{have: map[uint64]uint64{}, dir: t.TempDir()}
			states[i] = st
			c, err := target.NewClient(src.url, target.ClientOptions{Logger: quietLogger(), MaxAttempts: 1,
				UserAgent: fmt.Sprintf("load-client-%02d", i)})
			if err != nil {
				st.err = err
				return
			}
			for ctx.Err() == nil || st.exports == 0 {
				if err := st.export(c, &lat, &files, &resources); err != nil {
					errs.Add(1)
					st.err = err
					return
				}
				exports.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel()
	<-ingested
	<-sampled
	if ingestErr != nil {
		t.Fatalf("ingest: %v", ingestErr)
	}
	for i, st := range states {
		if st.err != nil {
			t.Errorf("client %d: %v", i, st.err)
		}
	}
	if t.Failed() {
		return
	}
	// No lost data: each client's copy equals the source at its last export.
	for i, st := range states {
		lost := st.compare(t, src)
		rep.LostResources += lost
		if lost > 0 {
			t.Errorf("client %d: %d resources differ from the source at %v", i, lost, st.tt)
		}
	}
	rep.Seconds = elapsed.Round(time.Millisecond).Seconds()
	rep.Exports, rep.Files, rep.Resources, rep.Errors = exports.Load(), files.Load(), resources.Load(), errs.Load()
	rep.PeakHeapMB = float64(peakHeap.Load()) / (1 << 20)
	rep.PeakRSSMB = float64(peakRSS.Load()) / (1 << 20)
	rep.Latency = lat.stats()
	b, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("load: %s", b)
	if f := os.Getenv("DTM_LOAD_REPORT"); f != "" {
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	if rep.Ingested == 0 || rep.Exports < loadClients {
		t.Fatalf("ingested %d writes, %d exports: the load did not run", rep.Ingested, rep.Exports)
	}
	if peakHeap.Load() > maxLoadHeap {
		t.Fatalf("heap in use peaked at %.0f MB, over the %d MB budget", rep.PeakHeapMB, maxLoadHeap>>20)
	}
}

// clientState is one load client's copy of the practice, as of
// transactionTime tt: 64 bits of the hash of each resource's type/id →
// 64 bits of its content hash. (Whole strings for 50 clients' copies of a
// large practice would dwarf the memory of what is measured.)
type clientState struct {
	have    map[uint64]uint64
	tt      time.Time
	dir     string
	exports int
	err     error
}

// export runs one export cycle: kick-off (since the last transactionTime),
// status polls until the manifest, every file downloaded and applied to the
// client's copy. Each operation is timed.
func (st *clientState) export(c *target.Client, lat *latencies, files, resources *atomic.Int64) error {
	ctx := context.Background()
	t0 := time.Now()
	statusURL, err := c.KickOff(ctx, ods, target.KickOffOptions{Since: st.tt})
	lat.add("kick-off", time.Since(t0))
	if err != nil {
		return err
	}
	var m *target.Manifest
	for {
		t0 := time.Now()
		ps, err := c.PollOnce(ctx, statusURL)
		lat.add("status poll", time.Since(t0))
		if err != nil {
			return err
		}
		if ps.Done {
			m = ps.Manifest
			break
		}
		time.Sleep(max(min(ps.RetryAfter, time.Second), 100*time.Millisecond))
	}
	for i, f := range slices.Concat(m.Output, m.Deleted) {
		path := filepath.Join(st.dir, strconv.Itoa(i)+".ndjson")
		t0 := time.Now()
		res, err := c.DownloadFile(ctx, f.URL, false, path, f.Count)
		lat.add("file download", time.Since(t0))
		if err != nil {
			return err
		}
		files.Add(1)
		resources.Add(res.Lines)
		if err := st.apply(path, i >= len(m.Output)); err != nil {
			return err
		}
	}
	st.tt = m.TransactionTime
	st.exports++
	return nil
}

// apply reads a downloaded file into the client's copy: output lines are
// upserts, deleted lines (transaction Bundles of DELETEs) removals.
func (st *clientState) apply(path string, deleted bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if deleted {
			var b struct {
				Entry []struct {
					Request struct{ URL string } `json:"request"`
				} `json:"entry"`
			}
			if err := json.Unmarshal(line, &b); err != nil {
				return fmt.Errorf("deleted line: %w", err)
			}
			for _, e := range b.Entry {
				delete(st.have, key(e.Request.URL))
			}
			continue
		}
		h, err := fhir.ParseHeader(line)
		if err != nil {
			return err
		}
		hash, err := fhir.ContentHash(line)
		if err != nil {
			return err
		}
		st.have[key(h.ResourceType+"/"+h.ID)] = short(hash)
	}
	return sc.Err()
}

// compare returns how many resources differ between the client's copy and
// the source at the client's last transactionTime (missing, extra or with
// other content).
func (st *clientState) compare(t *testing.T, src *testSource) int {
	t.Helper()
	ctx := context.Background()
	snap, err := src.db.SnapshotAt(ctx, st.tt)
	if err != nil {
		t.Fatal(err)
	}
	_, buckets, err := reconcile.Compute(ctx, src.db, ods, snap, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]uint64{}
	for _, es := range buckets {
		for _, e := range es {
			want[key(e.Type+"/"+e.ID)] = short(e.Hash)
		}
	}
	diff := 0
	for k, h := range want {
		if st.have[k] != h {
			diff++
		}
	}
	for k := range st.have {
		if _, ok := want[k]; !ok {
			diff++
		}
	}
	if len(want) == 0 {
		t.Fatal("the source digest is empty")
	}
	return diff
}

// key returns 64 bits of the SHA-256 of a resource's type/id.
func key(typeID string) uint64 {
	h := sha256.Sum256([]byte(typeID))
	return binary.BigEndian.Uint64(h[:8])
}

// short returns the first 64 bits of a hex content hash.
func short(hexHash string) uint64 {
	v, _ := strconv.ParseUint(hexHash[:min(16, len(hexHash))], 16, 64)
	return v
}

// maxStore raises a to v when v is larger, and reports whether it did.
func maxStore(a *atomic.Uint64, v uint64) bool {
	for {
		old := a.Load()
		if v <= old {
			return false
		}
		if a.CompareAndSwap(old, v) {
			return true
		}
	}
}

// writeHeapProfile writes a heap profile to path, ignoring errors (it is a
// diagnostic).
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	pprof.Lookup("heap").WriteTo(f, 0)
}

// rss returns the process's resident set size from /proc (0 where there is
// none).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
