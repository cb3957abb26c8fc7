package target

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm/internal/faultproxy"
)

// The network faults below were found by the fault-injection tests of
// internal/reliability/network; each case failed before its fix.

// netFile is the NDJSON file the upstream serves, uncompressed (some
// sources do not gzip), 100 lines of 36 bytes.
var netFile = []byte(strings.Repeat(`{"resourceType":"Patient","id":"p1"}`+"\n", 100))

// netUpstream serves a manifest at /status, the practice status at
// /dtm/v1/practices/A81001/status and netFile at /file.
func netUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b []byte
		switch r.URL.Path {
		case "/fhir/status":
			b = fmt.Appendf(nil, `{"transactionTime":"2026-01-05T10:00:00Z","request":"x","requiresAccessToken":false,`+
				`"output":[{"type":"Patient","url":"%s/file","count":100}],"deleted":[],"error":[]}`, srv.URL)
		case "/dtm/v1/practices/A81001/status":
			b = []byte(`{"practice":"A81001","freshness":"ok","lagSeconds":1,"counts":{"Patient":100},"lastUpdated":"2026-01-05T10:00:00Z"}`)
		case "/file":
			b = netFile
		case "/fhir/Binary/b1": // raw content, with Range support
			http.ServeContent(w, r, "b1", time.Time{}, bytes.NewReader(netFile))
			return
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// netClient returns a client going through a fault proxy in front of
// netUpstream that injects fault into the first request matching path.
func netClient(t *testing.T, path string, fault faultproxy.Fault) (*Client, *faultproxy.Proxy) {
	t.Helper()
	up := netUpstream(t)
	p, err := faultproxy.New(up.URL, faultproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.SetRules(faultproxy.Rule{Path: regexp.MustCompile("^" + regexp.QuoteMeta(path) + "$"), Nth: 1, Fault: fault})
	u, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	c, err := NewClient(u, ClientOptions{
		HTTP: &http.Client{Transport: tr}, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		MaxAttempts: 3, StallTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

// hourStall is a stall no test outlives: only the client's StallTimeout
// ends it (the proxy stops when the client goes away).
const hourStall = time.Hour

func TestClient_NetworkFaults(t *testing.T) {
	t.Parallel()
	// Each case must succeed on its second attempt; the deadline only stops
	// a client that would wait forever.
	run := func(t *testing.T, path string, f faultproxy.Fault, call func(ctx context.Context, c *Client) error) {
		t.Helper()
		c, p := netClient(t, path, f)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := call(ctx, c); err != nil {
			t.Fatalf("after %s: %v", f, err)
		}
		if n := p.Counts()[f.Label()]; n != 1 {
			t.Fatalf("%d faults injected, want 1", n)
		}
	}
	poll := func(ctx context.Context, c *Client) error {
		m, _, err := c.Poll(ctx, c.FHIRBase()+"/status", nil)
		if err == nil && (len(m.Output) != 1 || m.Output[0].Count != 100) {
			err = fmt.Errorf("manifest %+v", m)
		}
		return err
	}
	status := func(ctx context.Context, c *Client) error {
		st, err := c.Status(ctx, "A81001")
		if err == nil && st.Counts["Patient"] != 100 {
			err = fmt.Errorf("status %+v", st)
		}
		return err
	}
	download := func(ctx context.Context, c *Client) error {
		path := filepath.Join(t.TempDir(), "f.ndjson")
		res, err := c.DownloadFile(ctx, c.Source()+"/file", false, path, 100)
		if err != nil {
			return err
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, netFile) || res.Lines != 100 {
			return fmt.Errorf("downloaded %d lines, content equal %v", res.Lines, bytes.Equal(got, netFile))
		}
		return nil
	}
	binary := func(ctx context.Context, c *Client) error {
		path := filepath.Join(t.TempDir(), "b1")
		res, err := c.FetchBinary(ctx, c.FHIRBase()+"/Binary/b1", false, path, 0)
		if err != nil {
			return err
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, netFile) || res.Size != int64(len(netFile)) {
			return fmt.Errorf("fetched %d bytes, content equal %v", res.Size, bytes.Equal(got, netFile))
		}
		return nil
	}
	stall := faultproxy.Fault{Kind: faultproxy.Stall, Delay: hourStall}
	stallBody := faultproxy.Fault{Kind: faultproxy.Stall, At: 0.5, Delay: hourStall}
	// Cut inside the last line: the line count still matches.
	short := faultproxy.Fault{Kind: faultproxy.ShortLength, At: 0.999}
	for _, tc := range []struct {
		name  string
		path  string
		fault faultproxy.Fault
		call  func(ctx context.Context, c *Client) error
	}{
		{"DownloadStallInBody", "/file", stallBody, download},
		{"DownloadStallBeforeHeaders", "/file", stall, download},
		{"DownloadLastLineCutShort", "/file", short, download},
		{"BinaryStallInBody", "/fhir/Binary/b1", stallBody, binary},
		{"BinaryStallBeforeHeaders", "/fhir/Binary/b1", stall, binary},
		{"PollStallBeforeHeaders", "/fhir/status", stall, poll},
		{"PollManifestStall", "/fhir/status", stallBody, poll},
		{"PollManifestCutShort", "/fhir/status", faultproxy.Fault{Kind: faultproxy.ShortLength, At: 0.5}, poll},
		{"PollManifestTruncated", "/fhir/status", faultproxy.Fault{Kind: faultproxy.Truncate, At: 0.5}, poll},
		{"StatusStallBeforeHeaders", "/dtm/v1/practices/A81001/status", stall, status},
		{"StatusCutShort", "/dtm/v1/practices/A81001/status", faultproxy.Fault{Kind: faultproxy.ShortLength, At: 0.5}, status},
		{"StatusReset", "/dtm/v1/practices/A81001/status", faultproxy.Fault{Kind: faultproxy.Reset, At: 0.5}, status},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run(t, tc.path, tc.fault, tc.call)
		})
	}
}

func TestClient_StallError(t *testing.T) {
	t.Parallel()
	c, p := netClient(t, "/file", faultproxy.Fault{Kind: faultproxy.Stall, At: 0.5, Delay: hourStall})
	p.SetRules(faultproxy.Rule{Path: regexp.MustCompile("^/file$"), Fault: faultproxy.Fault{Kind: faultproxy.Stall, At: 0.5, Delay: hourStall}})
	_, err := c.DownloadFile(t.Context(), c.Source()+"/file", false, filepath.Join(t.TempDir(), "f"), 100)
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts: source stalled: nothing received for 200ms") {
		t.Fatalf("err = %v", err)
	}
	if n := p.Counts()["stall"]; n != 3 {
		t.Fatalf("%d stalls, want 3 (one per attempt)", n)
	}
}
