package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

// stream is an open /events response.
type stream struct {
	res *http.Response
	r   *bufio.Reader
}

// openStream connects to srv's event stream; the connection is closed
// when the test ends.
func openStream(t *testing.T, srv *httptest.Server) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+EventsPath, nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return &stream{res: res, r: bufio.NewReader(res.Body)}
}

// next reads the next "update" event and decodes its data, failing the
// test when none arrives within timeout.
func (s *stream) next(t *testing.T, timeout time.Duration) update {
	t.Helper()
	type result struct {
		u   update
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var event, data string
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				ch <- result{err: err}
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data += line[len("data: "):]
			case line == "" && event == "update":
				var u update
				ch <- result{u, json.Unmarshal([]byte(data), &u)}
				return
			case line == "":
				event, data = "", ""
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read event: %v", r.err)
		}
		return r.u
	case <-time.After(timeout):
		t.Fatalf("no event within %s", timeout)
	}
	return update{}
}

// counting is a provider whose first pull's Received count is n.
func counting(n *atomic.Int64) Provider {
	return func(context.Context) (Dashboard, error) { return testDashboard(fixedNow, n.Load()), nil }
}

// section returns the HTML of the update's section id.
func (u update) section(id string) string {
	for _, s := range u.Sections {
		if s.ID == id {
			return s.HTML
		}
	}
	return ""
}

func TestHandler_Events(t *testing.T) {
	t.Run("Notify", func(t *testing.T) {
		var n atomic.Int64
		n.Store(1111)
		h := NewHandler(counting(&n), Options{Interval: time.Hour})
		srv := httptest.NewServer(h)
		defer srv.Close()
		defer h.Close()
		s := openStream(t, srv)
		first := s.next(t, 10*time.Second)
		if !strings.Contains(first.section("p-A81001"), ">1,111<") || first.section("p-B82002") == "" {
			t.Fatalf("first update lacks the figures: %+v", first)
		}
		if first.GeneratedISO != "2026-10-13T09:30:00Z" || !strings.Contains(first.Nav, `href="#p-A81001"`) {
			t.Errorf("first update: generated %q, nav %q", first.GeneratedISO, first.Nav)
		}
		// The page carries the same content hashes, so the script replaces
		// nothing until something changes.
		_, page := get(t, h, context.Background(), "/")
		for _, sec := range first.Sections {
			if !strings.Contains(page, `id="`+sec.ID+`" aria-labelledby="`+sec.ID+`-h" data-hash="`+sec.Hash+`"`) {
				t.Errorf("page lacks section %s with hash %s", sec.ID, sec.Hash)
			}
		}
		n.Store(2222)
		h.Notify()
		second := s.next(t, 10*time.Second) // the interval is an hour: only Notify can cause it
		if !strings.Contains(second.section("p-A81001"), ">2,222<") {
			t.Errorf("second update does not show the new count: %s", second.section("p-A81001"))
		}
		if second.Sections[0].Hash == first.Sections[0].Hash || second.Sections[1].Hash != first.Sections[1].Hash {
			t.Errorf("hashes %s → %s (changed) and %s → %s (unchanged)", first.Sections[0].Hash, second.Sections[0].Hash,
				first.Sections[1].Hash, second.Sections[1].Hash)
		}
	})
	t.Run("Interval", func(t *testing.T) {
		var n atomic.Int64
		h := NewHandler(counting(&n), Options{Interval: 100 * time.Millisecond})
		srv := httptest.NewServer(h)
		defer srv.Close()
		defer h.Close()
		s := openStream(t, srv)
		s.next(t, 10*time.Second)
		n.Store(3333)
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(s.next(t, 10*time.Second).section("p-A81001"), ">3,333<") {
			if time.Now().After(deadline) {
				t.Fatal("the new count never arrived")
			}
		}
	})
	t.Run("Close", func(t *testing.T) {
		h := NewHandler(fixed(testDashboard(fixedNow, 1)), Options{Interval: time.Hour})
		srv := httptest.NewServer(h)
		defer srv.Close()
		s := openStream(t, srv)
		s.next(t, 10*time.Second)
		h.Close()
		done := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, s.r); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("stream ended with %v, want EOF", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("stream still open after Close")
		}
		res, err := srv.Client().Get(srv.URL + EventsPath)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNoContent {
			t.Errorf("after Close: status %d, want 204", res.StatusCode)
		}
		if res, _ := get(t, h, context.Background(), "/"); res.StatusCode != http.StatusOK {
			t.Errorf("page after Close: status %d", res.StatusCode)
		}
	})
	t.Run("ErrTooMany", func(t *testing.T) {
		h := NewHandler(fixed(Dashboard{}), Options{Interval: time.Hour, MaxStreams: 1})
		srv := httptest.NewServer(h)
		defer srv.Close()
		defer h.Close()
		openStream(t, srv).next(t, 10*time.Second)
		res, err := srv.Client().Get(srv.URL + EventsPath)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("second stream: status %d, want 503", res.StatusCode)
		}
	})
	t.Run("ErrProvider", func(t *testing.T) {
		p := func(context.Context) (Dashboard, error) { return Dashboard{}, errors.New("secret detail") }
		h := NewHandler(p, Options{Interval: time.Hour, Clock: dtm.ClockFunc(func() time.Time { return fixedNow })})
		srv := httptest.NewServer(h)
		defer srv.Close()
		defer h.Close()
		u := openStream(t, srv).next(t, 10*time.Second)
		if u.Error == "" || strings.Contains(u.Error, "secret") || len(u.Sections) != 0 {
			t.Errorf("update %+v: want a generic error and no sections", u)
		}
	})
	t.Run("Principal", func(t *testing.T) {
		h := NewHandler(fixed(testDashboard(fixedNow, 1)), Options{Interval: time.Hour})
		p := dtm.Principal{Client: "tss", Practices: []string{"B82002"}}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(dtm.NewContextWithPrincipal(r.Context(), p)))
		}))
		defer srv.Close()
		defer h.Close()
		u := openStream(t, srv).next(t, 10*time.Second)
		if len(u.Sections) != 1 || u.Sections[0].ID != "p-B82002" || strings.Contains(u.Nav, "A81001") {
			t.Errorf("update shows practices the principal may not read: %+v", u)
		}
	})
}

func TestHandler_ProviderCalls(t *testing.T) {
	var calls atomic.Int64
	p := func(context.Context) (Dashboard, error) { calls.Add(1); return Dashboard{}, nil }
	h := NewHandler(p, Options{Interval: time.Hour})
	for range 5 {
		get(t, h, context.Background(), "/")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("5 page loads within the interval called the provider %d times, want 1", n)
	}
	h.Notify()
	get(t, h, context.Background(), "/")
	if n := calls.Load(); n != 2 {
		t.Errorf("after Notify: %d provider calls, want 2", n)
	}
}
