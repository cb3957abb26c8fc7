package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/ukcore"
)

// serve starts the source on a loopback port without auth, for the rest.
func (b *benchRun) serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	b.url = "http://" + ln.Addr().String()
	srv, err := newSourceServer(b.src, dtm.SystemClock{}, b.log, b.url, false)
	if err != nil {
		return err
	}
	tlsConfig, _ := serverTLS("", "", "")
	go serveHTTP(ctx, b.log, ln, srv.handler, tlsConfig, b.url, nil, srv.run)
	return nil
}

// benchManifest is what the bench reads of a manifest.
type benchManifest struct {
	TransactionTime string `json:"transactionTime"`
	Output          []struct {
		URL string `json:"url"`
	} `json:"output"`
	Deleted []struct {
		URL string `json:"url"`
	} `json:"deleted"`
}

// export kicks off a Group export (since may be ""), polls every 20 ms and
// returns the manifest and when it was ready.
func (b *benchRun) export(ctx context.Context, since string) (benchManifest, time.Duration, error) {
	start := time.Now()
	u := b.url + "/fhir/Group/" + demoPractice + "/$export?_outputFormat=application/fhir%2Bndjson"
	if since != "" {
		u += "&_since=" + strings.ReplaceAll(since, "+", "%2B")
	}
	body, hdr, err := benchGet(ctx, u, false, http.StatusAccepted)
	if err != nil {
		return benchManifest{}, 0, fmt.Errorf("kick-off: %w: %s", err, body)
	}
	status := hdr.Get("Content-Location")
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, status, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return benchManifest{}, 0, err
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			var m benchManifest
			err := json.Unmarshal(data, &m)
			return m, time.Since(start), err
		}
		if resp.StatusCode != http.StatusAccepted {
			return benchManifest{}, 0, fmt.Errorf("status: %d %s", resp.StatusCode, data)
		}
		select {
		case <-ctx.Done():
			return benchManifest{}, 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// benchGet fetches u, asking for gzip when gz is set, and returns the
// decoded body and headers; a status other than want is an error.
func benchGet(ctx context.Context, u string, gz bool, want int) ([]byte, http.Header, error) {
	var buf bytes.Buffer
	hdr, err := benchFetch(ctx, u, gz, want, &buf)
	return buf.Bytes(), hdr, err
}

// benchFetch fetches u as benchGet does, copying the decoded body to w.
func benchFetch(ctx context.Context, u string, gz bool, want int, w io.Writer) (http.Header, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Prefer", "respond-async")
	req.Header.Set("Accept", "application/fhir+json")
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, err
		}
		r = zr
	}
	_, err = io.Copy(w, r)
	if err == nil && resp.StatusCode != want {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Header, err
}

// lineCounter counts the newlines written to it.
type lineCounter int

// Write counts p's newlines; it never fails.
func (c *lineCounter) Write(p []byte) (int, error) {
	*c += lineCounter(bytes.Count(p, []byte("\n")))
	return len(p), nil
}

// download fetches every file of a manifest, streaming, and counts the
// NDJSON lines (the client holds no file in memory, so the memory figures
// are the server's).
func download(ctx context.Context, m benchManifest, gz bool) (int, error) {
	var n lineCounter
	for _, f := range append(m.Output, m.Deleted...) {
		if _, err := benchFetch(ctx, f.URL, gz, http.StatusOK, &n); err != nil {
			return int(n), err
		}
	}
	return int(n), nil
}

func (b *benchRun) fullExport(ctx context.Context) error {
	for _, gz := range []bool{false, true} {
		var n int
		elapsed, peak, err := measure(func() error {
			m, _, err := b.export(ctx, "")
			if err != nil {
				return err
			}
			n, err = download(ctx, m, gz)
			return err
		})
		if err != nil {
			return fmt.Errorf("full export: %w", err)
		}
		name := "full export, kick-off to last byte"
		if gz {
			name += " (gzip)"
		}
		b.add(name, float64(n)/elapsed.Seconds(), "resources/s", "≥ 100,000", true, 100_000, peak, fmt.Sprintf("%d resources", n))
	}
	return nil
}

// changeLatency pushes single resources through the HTTP ingest endpoint
// while a bulk ingest runs alongside (batches of latencyBatch updates
// written straight to the store, as a source system's feed would): when a
// push returns, the change is committed and exportable.
func (b *benchRun) changeLatency(ctx context.Context) error {
	var lat []time.Duration
	var background int
	var bgTime time.Duration
	_, peak, err := measure(func() error {
		bgCtx, stop := context.WithCancel(ctx)
		bgErr := make(chan error, 1)
		go func() {
			start := time.Now()
			for round := 0; bgCtx.Err() == nil; round++ {
				writes := make([]dtm.Write, latencyBatch)
				for i := range writes {
					id := fmt.Sprintf("bg-%d", i)
					writes[i] = dtm.Write{Type: "Flag", ID: id, Op: dtm.OpUpsert, Patient: b.patientID,
						JSON: fmt.Appendf(nil, `{"resourceType":"Flag","id":"%s","status":"active","code":{"text":"round %d"},"subject":{"reference":"Patient/%s"}}`, id, round, b.patientID)}
				}
				c, err := b.src.Apply(bgCtx, demoPractice, writes)
				if err != nil && bgCtx.Err() == nil {
					bgErr <- err
					return
				}
				background += c.Applied
			}
			bgTime = time.Since(start) // before the send that publishes it
			bgErr <- nil
		}()
		err := b.pushes(ctx, &lat)
		stop()
		return errors.Join(err, <-bgErr)
	})
	if err != nil {
		return fmt.Errorf("change latency: %w", err)
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	b.add("change in source → available, p99", p99.Seconds()*1000, "ms", "≤ 5,000", false, 5000, peak,
		fmt.Sprintf("p50 %.1f ms over %d pushes, while a bulk ingest wrote %d resources alongside (%.0f/s)",
			p50.Seconds()*1000, len(lat), background, float64(background)/bgTime.Seconds()))
	return nil
}

// latencyBatch is the size of the background ingest's batches while change
// latency is measured.
const latencyBatch = 1000

// pushes pushes 200 single resources (50 with --quick) through the HTTP
// ingest endpoint and appends each one's latency to lat.
func (b *benchRun) pushes(ctx context.Context, lat *[]time.Duration) error {
	n := 200
	if b.o.quick {
		n = 50
	}
	for i := 0; i < n; i++ {
		body := fmt.Sprintf(`{"resourceType":"Flag","id":"lat-%d","status":"active","code":{"text":"x"},"subject":{"reference":"Patient/%s"}}`, i, b.patientID)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.url+"/dtm/v1/practices/"+demoPractice+"/ingest", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/fhir+ndjson")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ingest: %d", resp.StatusCode)
		}
		*lat = append(*lat, time.Since(start))
	}
	return nil
}

// pull measures a full target pull + validate + load into the new target
// store, and keeps the client for the reconcile and cutover stages.
func (b *benchRun) pull(ctx context.Context) error {
	client, err := target.NewClient(b.url, target.ClientOptions{Logger: b.log, MinBackoff: 20 * time.Millisecond})
	if err != nil {
		return err
	}
	b.client = client
	p, err := b.newPuller(nil)
	if err != nil {
		return err
	}
	var res target.PullResult
	elapsed, peak, err := measure(func() error {
		res, err = p.Pull(ctx, demoPractice)
		return err
	})
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	b.add("target pull + validate + load", float64(res.Counts.Received)/elapsed.Seconds(), "resources/s", "≥ 20,000", true, 20_000, peak,
		fmt.Sprintf("%d resources, %d attachments, %d quarantined; target %s", res.Counts.Received, res.Counts.Attachments,
			res.Counts.Quarantined, storeKind(benchTargetDB(b.o))))
	return nil
}

// newPuller returns a validating puller into the target store, reporting
// its phases to progress when not nil.
func (b *benchRun) newPuller(progress target.Progress) (*target.Puller, error) {
	v, err := ukcore.NewValidator(ukcore.Options{PracticeODS: demoPractice})
	if err != nil {
		return nil, err
	}
	cfg := target.Config{Store: b.tgt, State: b.tgt, Client: b.client, Validator: v,
		WorkDir: filepath.Join(b.dir, "work"), Logger: b.log}
	if progress != nil {
		cfg.Progress = progress
	}
	return target.NewPuller(cfg)
}

// printBenchHeader writes the heading of the results table.
func printBenchHeader(w io.Writer) {
	fmt.Fprintf(w, "%-52s %12s %-12s %-42s %-6s %8s %8s  %s\n", "measure", "value", "unit", "budget", "met", "heap MiB", "RSS MiB", "note")
}

// printBenchRow writes one result as a row of the table.
func printBenchRow(w io.Writer, r benchResult) {
	met := "-"
	if r.Met != nil && *r.Met {
		met = "met"
	} else if r.Met != nil {
		met = "MISSED"
	}
	fmt.Fprintf(w, "%-52s %12.1f %-12s %-42s %-6s %8.1f %8.0f  %s\n", r.Name, r.Value, r.Unit, r.Budget, met, r.PeakMiB, r.PeakRSS, r.Note)
}
