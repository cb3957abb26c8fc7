package bulk

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/storetest"
	"github.com/dtm-project/dtm/synth"
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

// loadGenerated fills PracticeA with a generated practice of the given
// number of patients (synth, seed 1: 25 types, the shape dtm bench
// uses), in batches of storetest.BatchSize.
func loadGenerated(b *testing.B, e *testEnv, patients int) {
	b.Helper()
	start := time.Now()
	ws := make([]dtm.Write, 0, storetest.BatchSize)
	n := 0
	err := synth.Generate(e.ctx, synth.Options{Practice: pA, Patients: patients, Seed: 1}, func(_ string, json []byte) error {
		json = bytes.Clone(json)
		h, err := fhir.ParseHeader(json)
		if err != nil {
			return err
		}
		w := dtm.Write{Type: h.ResourceType, ID: h.ID, Op: dtm.OpUpsert, JSON: json}
		if h.ResourceType == "Patient" {
			w.Patient, w.Member = h.ID, fhir.PatientActive(json)
		} else if w.Patient, err = fhir.Compartment(h.ResourceType, json); err != nil {
			return err
		}
		n++
		if ws = append(ws, w); len(ws) == cap(ws) {
			e.apply(pA, ws...)
			ws = ws[:0]
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if len(ws) > 0 {
		e.apply(pA, ws...)
	}
	b.Logf("loaded %d generated resources (%d patients) in %v", n, patients, time.Since(start))
}

// BenchmarkFullExport measures a Group export of a whole practice, from
// kick-off to the last byte of the last file over loopback, in resources/s
// of wall time and per CPU-second of the whole process (server and client:
// the figure to compare when other work loads the machine). It also reports
// the time to the manifest (planning) per export. Sub-benchmarks:
// "parallel" fetches the files with 2 concurrent downloads, uncompressed;
// "serial" and "serial-gzip" fetch them one after another, as dtm bench
// does; "serial-ab" is "serial" with and without read-ahead, alternately.
// DTM_BENCH_RESOURCES sets the practice size (default 100,000), or
// DTM_BENCH_PATIENTS a generated practice of that many patients instead.
func BenchmarkFullExport(b *testing.B) {
	e := newTestEnv(b, true, func(c *Config) { c.MaxActiveJobs = 1 << 20 })
	if p := benchSize(b, "DTM_BENCH_PATIENTS", 0); p > 0 {
		loadGenerated(b, e, p)
	} else {
		loadPractice(b, e, benchSize(b, "DTM_BENCH_RESOURCES", 100_000))
	}
	for _, bc := range []struct {
		name      string
		downloads int
		gz        bool
	}{{"parallel", 2, false}, {"serial", 1, false}, {"serial-gzip", 1, true}} {
		b.Run(bc.name, func(b *testing.B) {
			var total int64
			var manifestTime time.Duration
			cpu0 := cpuTime()
			for b.Loop() {
				start := time.Now()
				m := e.benchExport("/fhir/Group/" + pA + "/$export")
				manifestTime += time.Since(start)
				total += e.downloadAll(b, m, bc.downloads, bc.gz)
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "resources/s")
			b.ReportMetric(float64(total)/(cpuTime()-cpu0).Seconds(), "resources/cpu-s")
			b.ReportMetric(float64(manifestTime.Milliseconds())/float64(b.N), "ms-to-manifest/op")
		})
	}
	b.Run("serial-ab", func(b *testing.B) { benchReadAheadAB(b, e) })
}

// benchReadAheadAB compares serial downloads with and without read-ahead
// (export_readahead.go), alternating export by export so that both see
// the same load on a shared machine, and reports each one's rates.
func benchReadAheadAB(b *testing.B, e *testEnv) {
	tokens := e.srv.readAhead
	defer func() { e.srv.readAhead = tokens }()
	var wall [2]time.Duration
	var cpu [2]time.Duration
	var total [2]int64
	round := 0
	for b.Loop() {
		round++
		for k := range 2 {
			i := (k + round) % 2                              // each goes first every other round
			e.srv.readAhead = []chan struct{}{tokens, nil}[i] // no download is running
			start, cpu0 := time.Now(), cpuTime()
			total[i] += e.downloadAll(b, e.benchExport("/fhir/Group/"+pA+"/$export"), 1, false)
			wall[i] += time.Since(start)
			cpu[i] += cpuTime() - cpu0
		}
	}
	for i, name := range []string{"ahead", "noahead"} {
		b.ReportMetric(float64(total[i])/wall[i].Seconds(), "resources/s-"+name)
		b.ReportMetric(float64(total[i])/cpu[i].Seconds(), "resources/cpu-s-"+name)
	}
}

// benchExport kicks off an export at path and returns its manifest,
// polling every 20 ms over one kept-alive connection as dtm bench does
// (testEnv.wait polls every 2 ms on a new connection each time, which on 2
// cores takes a noticeable share of the CPU from the planning it waits for).
func (e *testEnv) benchExport(path string) manifest {
	e.tb.Helper()
	status := e.kickoff(path)
	client := &http.Client{}
	defer client.CloseIdleConnections()
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		req, err := http.NewRequestWithContext(e.ctx, http.MethodGet, status, nil)
		if err != nil {
			e.tb.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			e.tb.Fatal(err)
		}
		code, body := read(e.tb, resp)
		switch code {
		case http.StatusAccepted:
			continue
		case http.StatusOK:
			var m manifest
			if err := json.Unmarshal(body, &m); err != nil {
				e.tb.Fatalf("manifest: %v: %s", err, body)
			}
			return m
		default:
			e.tb.Fatalf("status: %d %s", code, body)
		}
	}
	e.tb.Fatal("export did not complete in time")
	return manifest{}
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// downloadAll fetches every output file with the given number of
// concurrent downloads (gzip-encoded when gz) and returns the number of
// lines.
func (e *testEnv) downloadAll(b *testing.B, m manifest, downloads int, gz bool) int64 {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		lines int64
		next  = make(chan manifestFile)
	)
	for range downloads {
		wg.Go(func() {
			for f := range next {
				n := e.countLines(b, f.URL, gz)
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

// countLines streams a file (asking for gzip when gz) and counts its lines
// without keeping it.
func (e *testEnv) countLines(b *testing.B, url string, gz bool) int64 {
	var headers []string
	if gz {
		headers = append(headers, "Accept-Encoding: gzip")
	}
	resp := e.do("GET", url, nil, headers...)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("%s: status %d", url, resp.StatusCode)
	}
	var body io.Reader = resp.Body
	if gz {
		if resp.Header.Get("Content-Encoding") != "gzip" {
			b.Fatalf("%s: gzip accepted but not used", url)
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			b.Fatalf("%s: %v", url, err)
		}
		body = zr
	}
	var n int64
	buf := make([]byte, 256<<10)
	for {
		k, err := body.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return n
		} else if err != nil {
			b.Fatalf("%s: %v", url, err)
		}
	}
}
