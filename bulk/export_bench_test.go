package bulk

import (
	"bytes"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/storetest"
)

// benchSize returns the resource count from environment variable name, or
// def.
func benchSize(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return n
	}
	return def
}

// loadPractice fills PracticeA with n resources: one registered patient
// per 100 ~1.5 KB Observations, in batches of storetest.BatchSize.
func loadPractice(b *testing.B, e *testEnv, n int) {
	b.Helper()
	start := time.Now()
	ws := make([]dtm.Write, 0, storetest.BatchSize)
	flush := func() {
		if len(ws) > 0 {
			e.apply(pA, ws...)
			ws = ws[:0]
		}
	}
	for i := range n {
		if i%100 == 0 {
			ws = append(ws, patient("pat-"+strconv.Itoa(i/100), true))
		} else {
			id, pat := "obs-"+strconv.Itoa(i), "pat-"+strconv.Itoa(i/100)
			ws = append(ws, storetest.Upsert("Observation", id, pat, storetest.ResourceJSON(id, pat, i)))
		}
		if len(ws) == cap(ws) {
			flush()
		}
	}
	flush()
	b.Logf("loaded %d resources in %v", n, time.Since(start))
}

// BenchmarkFullExport measures a Group export of a whole practice, from
// kick-off to the last byte of the last file over loopback (files fetched
// by 2 concurrent downloads, uncompressed), in resources/s.
// DTM_BENCH_RESOURCES sets the practice size (default 100,000).
func BenchmarkFullExport(b *testing.B) {
	n := benchSize(b, "DTM_BENCH_RESOURCES", 100_000)
	e := newTestEnv(b, true, func(c *Config) { c.MaxActiveJobs = 1 << 20 })
	loadPractice(b, e, n)
	var total int64
	b.ResetTimer()
	for b.Loop() {
		m := e.wait(e.kickoff("/fhir/Group/" + pA + "/$export"))
		total += e.downloadAll(b, m)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "resources/s")
}

// downloadAll fetches every output file with 2 concurrent downloads and
// returns the number of lines.
func (e *testEnv) downloadAll(b *testing.B, m manifest) int64 {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		lines int64
		next  = make(chan manifestFile)
	)
	for range 2 {
		wg.Go(func() {
			for f := range next {
				n := e.countLines(b, f.URL)
				if n != f.Count {
					b.Errorf("%s: %d lines, want %d", f.URL, n, f.Count)
				}
				mu.Lock()
				lines += n
				mu.Unlock()
			}
		})
	}
	for _, f := range m.Output {
		next <- f
	}
	close(next)
	wg.Wait()
	return lines
}

// BenchmarkDeltaExport1000 measures how long a Group export of 1,000
// changes (updates, deletes and a few new registrations) in a large
// practice takes from kick-off to the manifest being ready.
// DTM_BENCH_LARGE sets the practice size (default 1,000,000).
func BenchmarkDeltaExport1000(b *testing.B) {
	n := benchSize(b, "DTM_BENCH_LARGE", 1_000_000)
	e := newTestEnv(b, true, func(c *Config) { c.MaxActiveJobs = 1 << 20 })
	loadPractice(b, e, n)
	head, err := e.db.Head(e.ctx)
	if err != nil {
		b.Fatal(err)
	}
	since := fhir.FormatInstant(head.Time) // as if a full export had just run
	round := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		e.applyDelta(round, n)
		round++
		b.StartTimer()
		m := e.wait(e.kickoff("/fhir/Group/" + pA + "/$export?_since=" + url.QueryEscape(since)))
		b.StopTimer()
		var got int64
		for _, f := range append(m.Output, m.Deleted...) {
			got += f.Count
		}
		if got < 900 { // a few deletes may repeat earlier rounds' and be skipped
			b.Fatalf("delta export has %d resources, want about 1000", got)
		}
		since = m.TransactionTime
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/manifest")
}

// applyDelta commits 1,000 changes spread over the practice: 980 updates
// and deletes of existing Observations and 10 new registered patients with
// one Observation each.
func (e *testEnv) applyDelta(round, n int) {
	ws := make([]dtm.Write, 0, 1000)
	for i := range 980 {
		k := (round*7919 + i*1009) % n
		if k%100 == 0 {
			k++
		}
		id, pat := "obs-"+strconv.Itoa(k), "pat-"+strconv.Itoa(k/100)
		if i%10 == 9 {
			ws = append(ws, storetest.Delete("Observation", id))
			continue
		}
		ws = append(ws, storetest.Upsert("Observation", id, pat, storetest.ResourceJSON(id, pat, k+(round+1)*n)))
	}
	for i := range 10 {
		pat := fmt.Sprintf("new-%d-%d", round, i)
		ws = append(ws, patient(pat, true), obs("obs-"+pat, pat, "1"))
	}
	for len(ws) > 0 {
		k := min(100, len(ws))
		e.apply(pA, ws[:k]...)
		ws = ws[k:]
	}
}

// countLines streams a file and counts its lines without keeping it.
func (e *testEnv) countLines(b *testing.B, url string) int64 {
	resp := e.do("GET", url, nil)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("%s: status %d", url, resp.StatusCode)
	}
	var n int64
	buf := make([]byte, 256<<10)
	for {
		k, err := resp.Body.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return n
		} else if err != nil {
			b.Fatalf("%s: %v", url, err)
		}
	}
}
