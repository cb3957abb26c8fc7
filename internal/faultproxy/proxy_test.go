package faultproxy_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm/internal/faultproxy"
)

// body is what the upstream serves at /file: 10 KiB of NDJSON-like lines.
var body = bytes.Repeat([]byte(`{"resourceType":"Basic","id":"x"}`+"\n"), 300)

// mustProxy starts an upstream serving body and a proxy in front of it.
func mustProxy(t *testing.T, opts faultproxy.Options) (*faultproxy.Proxy, string) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+ndjson")
		w.Write(body)
	}))
	t.Cleanup(up.Close)
	p, err := faultproxy.New(up.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	u, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, u
}

// get fetches u/file with a fresh connection and returns status, headers
// and the body read so far, with the read error.
func get(t *testing.T, u string, timeout time.Duration) (*http.Response, []byte, error) {
	t.Helper()
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(u + "/file")
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestProxy_Faults(t *testing.T) {
	t.Parallel()
	file := regexp.MustCompile(`^/file$`)
	cases := []struct {
		name  string
		fault faultproxy.Fault
		check func(t *testing.T, resp *http.Response, b []byte, err error)
	}{
		{"PassThrough", faultproxy.Fault{}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err != nil || !bytes.Equal(b, body) {
				t.Fatalf("err %v, %d bytes", err, len(b))
			}
		}},
		{"ResetBeforeResponse", faultproxy.Fault{Kind: faultproxy.Reset, Forward: true}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err == nil || resp != nil {
				t.Fatalf("got a response: %v", err)
			}
		}},
		{"ResetInBody", faultproxy.Fault{Kind: faultproxy.Reset, At: 0.5}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err == nil || len(b) >= len(body) {
				t.Fatalf("err %v after %d bytes", err, len(b))
			}
		}},
		{"Truncate", faultproxy.Fault{Kind: faultproxy.Truncate, At: 0.3}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if !errors.Is(err, io.ErrUnexpectedEOF) || len(b) >= len(body) {
				t.Fatalf("err %v after %d bytes", err, len(b))
			}
		}},
		{"ShortLength", faultproxy.Fault{Kind: faultproxy.ShortLength, At: 0.5}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err != nil || len(b) != len(body)/2 || resp.ContentLength != int64(len(b)) {
				t.Fatalf("err %v, %d bytes, Content-Length %d", err, len(b), resp.ContentLength)
			}
		}},
		{"LongLength", faultproxy.Fault{Kind: faultproxy.LongLength}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if !errors.Is(err, io.ErrUnexpectedEOF) || resp.ContentLength <= int64(len(body)) {
				t.Fatalf("err %v, Content-Length %d", err, resp.ContentLength)
			}
		}},
		{"Status503RetryAfter", faultproxy.Fault{Kind: faultproxy.Status, Code: 503, RetryAfter: "7"}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "7" || !strings.Contains(string(b), "OperationOutcome") {
				t.Fatalf("err %v, %v", err, resp)
			}
		}},
		{"Status429", faultproxy.Fault{Kind: faultproxy.Status, Code: 429}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "" {
				t.Fatalf("err %v, %v", err, resp)
			}
		}},
		{"Slow", faultproxy.Fault{Kind: faultproxy.Slow, BytesPerSec: 50 << 10}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err != nil || !bytes.Equal(b, body) {
				t.Fatalf("err %v, %d bytes", err, len(b))
			}
		}},
		{"StallBeforeHeaders", faultproxy.Fault{Kind: faultproxy.Stall, Delay: 5 * time.Second}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			var ne interface{ Timeout() bool }
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("want a client timeout, got %v", err)
			}
		}},
		{"StallInBody", faultproxy.Fault{Kind: faultproxy.Stall, At: 0.5, Delay: 5 * time.Second}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err == nil || len(b) >= len(body) {
				t.Fatalf("err %v after %d bytes", err, len(b))
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, u := mustProxy(t, faultproxy.Options{})
			if tc.fault.Kind != "" {
				p.SetRules(faultproxy.Rule{Path: file, Fault: tc.fault})
			}
			resp, b, err := get(t, u, 500*time.Millisecond)
			tc.check(t, resp, b, err)
			ins := p.Injections()
			if want := map[bool]int{true: 0, false: 1}[tc.fault.Kind == ""]; len(ins) != want {
				t.Fatalf("recorded %d injections, want %d: %+v", len(ins), want, ins)
			}
			if len(ins) == 1 && (ins[0].Note != "" || !ins[0].Rule || p.Counts()[tc.fault.Label()] != 1) {
				t.Fatalf("injection %+v, counts %v", ins[0], p.Counts())
			}
		})
	}
}

func TestProxy_Rules(t *testing.T) {
	t.Parallel()
	p, u := mustProxy(t, faultproxy.Options{})
	p.SetRules(faultproxy.Rule{Method: "GET", Path: regexp.MustCompile(`^/file$`), Nth: 2,
		Fault: faultproxy.Fault{Kind: faultproxy.Status, Code: 502}})
	var codes []int
	for range 4 {
		resp, _, err := get(t, u, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, resp.StatusCode)
	}
	if want := []int{200, 502, 200, 200}; !slices.Equal(codes, want) {
		t.Fatalf("statuses %v, want %v", codes, want)
	}
	if p.Requests() != 4 || p.Counts()["status-502"] != 1 {
		t.Fatalf("requests %d, counts %v", p.Requests(), p.Counts())
	}
}

// TestProxy_RandomSeed: the same seed and requests give the same faults.
func TestProxy_RandomSeed(t *testing.T) {
	t.Parallel()
	run := func() []string {
		p, u := mustProxy(t, faultproxy.Options{Seed: 42, Random: faultproxy.Random{Rate: 0.5, Faults: []faultproxy.Fault{
			{Kind: faultproxy.Status, Code: 500}, {Kind: faultproxy.Status, Code: 503, RetryAfter: "1"},
			{Kind: faultproxy.Truncate}, {Kind: faultproxy.ShortLength},
		}}})
		for range 20 {
			get(t, u, time.Second)
		}
		var got []string
		for _, in := range p.Injections() {
			got = append(got, in.Fault.String())
		}
		return got
	}
	a, b := run(), run()
	if len(a) == 0 || len(a) == 20 || !slices.Equal(a, b) {
		t.Fatalf("runs differ or degenerate:\n%v\n%v", a, b)
	}
}
