package target_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/ukcore"
)

// benchPatients is the practice size of the pull benchmarks
// (DTM_BENCH_PATIENTS, 200 by default).
func benchPatients() int {
	if n, err := strconv.Atoi(os.Getenv("DTM_BENCH_PATIENTS")); err == nil && n > 0 {
		return n
	}
	return 200
}

// BenchmarkPull_Initial measures an initial extract end to end on loopback:
// kick-off, export, download, validate (UK Core), load into a new SQLite
// target, attachments, checkpoint.
func BenchmarkPull_Initial(b *testing.B) {
	src := mustSource(b, benchPatients())
	n := liveCount(b, src.db)
	var peak uint64
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		tgt := mustOpen(b, filepath.Join(b.TempDir(), fmt.Sprintf("target%d.db", i)))
		p := pullerFor(b, src.url, tgt, b.TempDir(), os.Getenv("DTM_BENCH_NOVALIDATE") == "")
		stop := sampleHeap(&peak)
		res, err := p.Pull(b.Context(), testODS)
		stop()
		if err != nil {
			b.Fatal(err)
		}
		if res.Counts.Applied != int64(n) {
			b.Fatalf("applied %d of %d", res.Counts.Applied, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "resources/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(n*b.N), "cpu-µs/resource")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// BenchmarkPull_Delta measures a delta pull: about 1% of the practice
// changed (amended Observations, deleted Conditions, new patients).
func BenchmarkPull_Delta(b *testing.B) {
	src := mustSource(b, benchPatients())
	tgt := mustOpen(b, filepath.Join(b.TempDir(), "target.db"))
	p := pullerFor(b, src.url, tgt, b.TempDir(), os.Getenv("DTM_BENCH_NOVALIDATE") == "")
	if _, err := p.Pull(b.Context(), testODS); err != nil {
		b.Fatal(err)
	}
	var moved int64
	var peak uint64
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		src.change(b, benchPatients(), benchPatients()/20, benchPatients()/100+1)
		b.StartTimer()
		stop, cpu0 := sampleHeap(&peak), cpuTime()
		res, err := p.Pull(b.Context(), testODS)
		cpu += cpuTime() - cpu0
		stop()
		if err != nil {
			b.Fatal(err)
		}
		moved += res.Counts.Received
	}
	b.ReportMetric(float64(moved)/b.Elapsed().Seconds(), "resources/s")
	b.ReportMetric(float64(moved)/float64(b.N), "changes/pull")
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(moved), "cpu-µs/resource")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// BenchmarkPull_Again measures a re-pull of a practice the target store
// already holds unchanged (as after a crash mid-apply, or an export started
// again): each iteration pulls the whole practice with a fresh pull state
// over the same store, so every resource is held at its version and is
// skipped without being validated again.
func BenchmarkPull_Again(b *testing.B) {
	src := mustSource(b, benchPatients())
	n := liveCount(b, src.db)
	store := mustOpen(b, filepath.Join(b.TempDir(), "target.db"))
	validate := os.Getenv("DTM_BENCH_NOVALIDATE") == ""
	if _, err := pullerFor(b, src.url, store, b.TempDir(), validate).Pull(b.Context(), testODS); err != nil {
		b.Fatal(err)
	}
	var cpu time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		state := mustOpen(b, filepath.Join(b.TempDir(), fmt.Sprintf("state%d.db", i)))
		p := pullerSplit(b, src.url, store, state, b.TempDir(), validate)
		b.StartTimer()
		cpu0 := cpuTime()
		res, err := p.Pull(b.Context(), testODS)
		cpu += cpuTime() - cpu0
		if err != nil {
			b.Fatal(err)
		}
		if res.Counts.Received != int64(n) {
			b.Fatalf("received %d of %d", res.Counts.Received, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "resources/s")
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(n*b.N), "cpu-µs/resource")
}

// pullerSplit is pullerFor with the pull state in another database than
// the target store.
func pullerSplit(tb testing.TB, srcURL string, store dtm.Store, state dtm.TargetState, workDir string, validate bool) *target.Puller {
	tb.Helper()
	c, err := target.NewClient(srcURL, target.ClientOptions{Logger: quietLogger(), MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := target.Config{Store: store, State: state, Client: c, WorkDir: workDir, Logger: quietLogger(), BatchSize: 500}
	if validate {
		cfg.NewValidator = func(resolve func(string) bool) (target.Validator, error) {
			return ukcore.NewValidator(ukcore.Options{PracticeODS: testODS, Resolve: resolve})
		}
	}
	p, err := target.NewPuller(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// liveCount returns the number of live resources of the test practice.
func liveCount(tb testing.TB, s dtm.Store) int {
	tb.Helper()
	head, err := s.Head(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	counts, err := s.Counts(context.Background(), testODS, head.Seq)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, c := range counts {
		n += int(c)
	}
	return n
}

// sampleHeap records the largest heap in use, sampled every 10 ms, into
// *peak until stop is called. It collects garbage first, so that what the
// test harness left behind (the generated practice) is not counted.
func sampleHeap(peak *uint64) (stop func()) {
	runtime.GC()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			*peak = max(*peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// cpuTime returns the process's user + system CPU time: on a shared machine
// a steadier figure than wall time (it counts the in-process source too).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
