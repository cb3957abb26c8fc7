package reconcile_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/reconcile"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
)

// benchPractice returns a SQLite store holding a generated practice of
// DTM_BENCH_PATIENTS patients (100 by default). With DTM_BENCH_DB set, the
// store is kept at that path and reused by later runs with the same size.
func benchPractice(b *testing.B) *sqlite.DB {
	db, _ := benchPracticePath(b)
	return db
}

// benchPracticePath is benchPractice, also returning the store's path.
func benchPracticePath(b *testing.B) (*sqlite.DB, string) {
	b.Helper()
	n := 100
	if v, err := strconv.Atoi(os.Getenv("DTM_BENCH_PATIENTS")); err == nil && v > 0 {
		n = v
	}
	path := os.Getenv("DTM_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.db")
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path, sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if p, err := db.Practice(ctx, ods); err == nil && p.Name == strconv.Itoa(n) {
		return db, path
	}
	if _, err := db.CreatePractice(ctx, dtm.Practice{ODS: ods, Name: strconv.Itoa(n)}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var batch []dtm.Write
	flush := func() error {
		_, err := db.Apply(ctx, ods, batch)
		batch = batch[:0]
		return err
	}
	err = synth.Generate(ctx, synth.Options{Practice: ods, Patients: n, Seed: 1}, func(typ string, j []byte) error {
		h, err := fhir.ParseHeader(j)
		if err != nil {
			return err
		}
		patient, _ := fhir.Compartment(typ, j)
		batch = append(batch, dtm.Write{Type: typ, ID: h.ID, Op: dtm.OpUpsert, JSON: append([]byte(nil), j...),
			Patient: patient, Member: typ == "Patient" && fhir.PatientActive(j)})
		if len(batch) == 1000 {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d patients in %s", n, time.Since(start).Round(time.Second))
	return db, path
}

// BenchmarkCompute measures the digest of a generated practice on SQLite
// (through the store's DigestChanges): see docs/BENCHMARKS.md, "Reconcile".
//
//	DTM_BENCH_PATIENTS=10000 DTM_BENCH_DB=/tmp/digest-10k.db go test ./reconcile -run '^$' -bench Compute -benchtime 1x
func BenchmarkCompute(b *testing.B) {
	db := benchPractice(b)
	ctx := context.Background()
	head, err := db.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var d dtm.Digest
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	peak := samplePeakHeap()
	for b.Loop() {
		d, _, err = reconcile.Compute(ctx, db, ods, head, func(p string) bool { return p == dtm.NoPatient })
		if err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - cpu0
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(d.Total)*float64(b.N)/b.Elapsed().Seconds(), "resources/s")
	b.ReportMetric(float64(len(d.Buckets)), "buckets")
	b.ReportMetric(float64(d.Total), "resources")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(peak())/1e6, "MB-peak-heap")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/1e6, "MB-alloc/op")
}

// samplePeakHeap samples the live heap every 20 ms until the returned
// function is called, which returns the largest sample in bytes.
func samplePeakHeap() func() uint64 {
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		var peak uint64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(stop); return <-done }
}

// BenchmarkReconcile measures "dtm target reconcile" of a practice that
// matches: the source serves its digest over HTTP (a fresh DigestServer
// each iteration, so nothing is cached) while the target computes its own
// over a copy of the same journal, both on this machine. See
// docs/BENCHMARKS.md, "Reconcile".
//
//	DTM_BENCH_PATIENTS=10000 DTM_BENCH_DB=/tmp/digest-10k.db go test ./reconcile -run '^$' -bench Reconcile -benchtime 1x
func BenchmarkReconcile(b *testing.B) {
	src, srcPath := benchPracticePath(b)
	ctx := context.Background()
	tgtPath := srcPath + ".target"
	if err := copyStore(srcPath, tgtPath); err != nil {
		b.Fatal(err)
	}
	tgt, err := sqlite.Open(ctx, tgtPath, sqlite.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tgt.Close() })
	head, err := src.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var ds atomic.Pointer[source.DigestServer]
	all := dtm.Principal{Practices: []string{dtm.AllPractices}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux := http.NewServeMux()
		ds.Load().Routes(mux)
		mux.ServeHTTP(w, r.WithContext(dtm.NewContextWithPrincipal(r.Context(), all)))
	}))
	b.Cleanup(srv.Close)
	c, err := target.NewClient(srv.URL, target.ClientOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	var rep target.ReconcileReport
	for b.Loop() {
		ds.Store(&source.DigestServer{Store: src, Logger: quiet})
		rep, err = target.Reconcile(ctx, c, tgt, ods, target.ReconcileOptions{At: head.Time})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Result != target.ReconcileMatch {
			b.Fatalf("result %s", rep.Result)
		}
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(rep.SourceDigest.Total), "resources")
	b.ReportMetric(float64(time.Duration(rep.Timings["sourceDigest"]).Seconds()), "s-source-digest")
	b.ReportMetric(float64(time.Duration(rep.Timings["targetDigest"]).Seconds()), "s-target-digest")
}

// copyStore copies the store at from (its main file and write-ahead log;
// no writer may be running) to path, unless path already holds a copy of
// the same size and there is no log.
func copyStore(from, path string) error {
	fi, err := os.Stat(from)
	if err != nil {
		return err
	}
	wal, _ := os.Stat(from + "-wal")
	if ti, err := os.Stat(path); err == nil && ti.Size() == fi.Size() && (wal == nil || wal.Size() == 0) {
		return nil
	}
	os.Remove(path + "-wal")
	os.Remove(path + "-shm")
	if err := copyFile(from, path); err != nil {
		return err
	}
	if wal != nil {
		return copyFile(from+"-wal", path+"-wal")
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// BenchmarkReconcileWarm measures the reconcile that follows a pull in
// steady state: the source keeps its recent digest trees in memory and the
// target its tree in a file, and between two reconciles both stores got
// the same 200 changes in 200 patients' records. One cold reconcile runs
// first (reported as s-cold); each iteration then changes both stores
// (untimed) and reconciles.
//
//	DTM_BENCH_PATIENTS=10000 DTM_BENCH_DB=/tmp/digest-10k.db go test ./reconcile -run '^$' -bench ReconcileWarm -benchtime 3x
func BenchmarkReconcileWarm(b *testing.B) {
	src, srcPath := benchPracticePath(b)
	ctx := context.Background()
	tgtPath := srcPath + ".target"
	if err := copyStore(srcPath, tgtPath); err != nil {
		b.Fatal(err)
	}
	tgt, err := sqlite.Open(ctx, tgtPath, sqlite.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tgt.Close() })
	ds := &source.DigestServer{Store: src, Logger: quiet}
	all := dtm.Principal{Practices: []string{dtm.AllPractices}}
	mux := http.NewServeMux()
	ds.Routes(mux)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r.WithContext(dtm.NewContextWithPrincipal(r.Context(), all)))
	}))
	b.Cleanup(srv.Close)
	c, err := target.NewClient(srv.URL, target.ClientOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	opts := target.ReconcileOptions{TreeFile: filepath.Join(b.TempDir(), "tree.json")}
	reconcileAt := func() target.ReconcileReport {
		head, err := src.Head(ctx)
		if err != nil {
			b.Fatal(err)
		}
		opts.At = head.Time
		rep, err := target.Reconcile(ctx, c, tgt, ods, opts)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Result != target.ReconcileMatch {
			b.Fatalf("result %s: %v", rep.Result, rep.Summary)
		}
		return rep
	}
	start := time.Now()
	reconcileAt()
	cold := time.Since(start)
	obs := benchObservations(b, src, 200)
	var rep target.ReconcileReport
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		ws := make([]dtm.Write, len(obs))
		for k, o := range obs {
			j := o.JSON
			if i%2 == 0 {
				j = bytes.Replace(j, []byte(`"status":"final"`), []byte(`"status":"amended"`), 1)
			}
			ws[k] = dtm.Write{Type: o.Type, ID: o.ID, JSON: j, Patient: o.Patient}
		}
		for _, s := range []*sqlite.DB{src, tgt} {
			if _, err := s.Apply(ctx, ods, ws); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		rep = reconcileAt()
	}
	b.ReportMetric(cold.Seconds(), "s-cold")
	b.ReportMetric(float64(time.Duration(rep.Timings["sourceDigest"]).Seconds()), "s-source-digest")
	b.ReportMetric(float64(time.Duration(rep.Timings["targetDigest"]).Seconds()), "s-target-digest")
	b.Logf("target tree: %s", rep.TargetTree)
}

// benchObservations returns one final Observation from each of the first
// n patients' records, as stored.
func benchObservations(b *testing.B, s *sqlite.DB, n int) []dtm.Change {
	b.Helper()
	ctx := context.Background()
	head, err := s.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var out []dtm.Change
	for i := 1; len(out) < n && i <= 10*n; i++ {
		var found *dtm.Change
		err := s.Compartment(ctx, ods, fmt.Sprintf("pat-%06d", i), head.Seq, func(c dtm.Change) error {
			if found == nil && c.Type == "Observation" && bytes.Contains(c.JSON, []byte(`"status":"final"`)) {
				found = &c
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if found != nil {
			out = append(out, *found)
		}
	}
	return out
}
