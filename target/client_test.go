package target

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

// ig is a small FHIR Bulk Data server following the IG, with knobs to
// inject the failures the client must survive. It serves from memory and is
// used only to test the Client's protocol handling; the end-to-end tests use
// the real source.
type ig struct {
	srv *httptest.Server
	mu  sync.Mutex

	noSMART      bool
	fhirVersion  string
	kickoff429   int               // 429s before the kick-off is accepted
	retryAfter   string            // Retry-After of those 429s ("0.01" when "")
	kickoffFail  int               // status to answer the kick-off with (0: accept)
	polls        int               // 202s before the manifest
	pollGone     bool              // the status URL has expired
	requireToken bool              // manifest requiresAccessToken
	files        map[string][]byte // file path → content
	counts       map[string]int64  // file path → manifest count (default: lines)
	fail         map[string]int    // path → 503s still to send
	truncate     map[string]int    // path → truncated responses still to send
	gzip         bool

	wantToken string   // when set, kick-offs without "Bearer wantToken" get 401
	kickoffs  []string // kick-off query strings received
	auth      []string // "path auth-header" of every request
	cancelled bool
}

func newIG(t testing.TB) *ig {
	s := &ig{fhirVersion: "4.0.1", files: map[string][]byte{}, counts: map[string]int64{},
		fail: map[string]int{}, truncate: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *ig) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auth = append(s.auth, r.URL.Path+" "+r.Header.Get("Authorization"))
	switch p := r.URL.Path; {
	case p == "/.well-known/smart-configuration":
		if s.noSMART {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"token_endpoint":"`+s.srv.URL+`/auth/token","scopes_supported":["system/*.rs"]}`)
	case p == "/fhir/metadata":
		fmt.Fprintf(w, `{"resourceType":"CapabilityStatement","fhirVersion":%q,"software":{"name":"ig","version":"1"},"rest":[{"resource":[{"type":"Group","operation":[{"name":"export"}]}]}]}`, s.fhirVersion)
	case strings.HasSuffix(p, "/$export"):
		s.kickoff(w, r)
	case p == "/status/1" && r.Method == http.MethodDelete:
		s.cancelled = true
		w.WriteHeader(http.StatusAccepted)
	case p == "/status/1":
		s.status(w)
	case strings.HasPrefix(p, "/dtm/v1/practices/"):
		fmt.Fprint(w, `{"lastUpdated":"2025-03-01T10:00:00.123456Z","sourceWatermark":"2025-03-01T11:00:00Z","lagSeconds":60,"freshness":"ok","counts":{"Patient":2}}`)
	case strings.HasPrefix(p, "/files/"):
		s.file(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *ig) kickoff(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Prefer") != "respond-async" || r.Header.Get("Accept") != "application/fhir+json" {
		http.Error(w, "bad headers", http.StatusBadRequest)
		return
	}
	s.kickoffs = append(s.kickoffs, r.URL.RawQuery)
	if s.wantToken != "" && r.Header.Get("Authorization") != "Bearer "+s.wantToken {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if s.kickoff429 > 0 {
		s.kickoff429--
		ra := s.retryAfter
		if ra == "" {
			ra = "0.01"
		}
		w.Header().Set("Retry-After", ra)
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if s.kickoffFail != 0 {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(s.kickoffFail)
		fmt.Fprint(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"_since is in the future"}]}`)
		return
	}
	w.Header().Set("Content-Location", "/status/1")
	w.WriteHeader(http.StatusAccepted)
}

func (s *ig) status(w http.ResponseWriter) {
	if s.pollGone {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if s.polls > 0 {
		s.polls--
		w.Header().Set("X-Progress", "planning "+strconv.Itoa(s.polls))
		w.Header().Set("Retry-After", "0.01")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var out []string
	for path, b := range s.files {
		n, ok := s.counts[path]
		if !ok {
			n = int64(bytes.Count(b, []byte("\n")))
		}
		kind, typ, _ := strings.Cut(strings.TrimPrefix(path, "/files/"), "/")
		out = append(out, fmt.Sprintf(`"%s":[{"type":%q,"url":"%s%s","count":%d}]`, kind, typ, s.srv.URL, path, n))
	}
	fmt.Fprintf(w, `{"transactionTime":"2025-03-01T12:00:00.654321Z","request":"x","requiresAccessToken":%t,%s}`,
		s.requireToken, strings.Join(out, ","))
}

func (s *ig) file(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	b, ok := s.files[p]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if s.fail[p] > 0 {
		s.fail[p]--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if rg := r.Header.Get("Range"); rg != "" {
		from, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(b)-1, len(b)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(b[from:])
		return
	}
	if s.truncate[p] > 0 {
		s.truncate[p]--
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	if s.gzip && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write(b)
		zw.Close()
		return
	}
	w.Write(b)
}

// testClient returns a client of s with fast retries.
func testClient(t testing.TB, s *ig, auth Authorizer) *Client {
	t.Helper()
	c, err := NewClient(s.srv.URL, ClientOptions{
		Auth: auth, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		MaxRetryAfter: 20 * time.Millisecond, MaxAttempts: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }

func TestClient_Discover(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s := newIG(t)
		d, err := testClient(t, s, nil).Discover(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !d.AuthRequired || !strings.HasSuffix(d.TokenEndpoint, "/auth/token") || !d.Export || d.FHIRVersion != "4.0.1" {
			t.Fatalf("discovery = %+v", d)
		}
	})
	t.Run("NoAuth", func(t *testing.T) {
		s := newIG(t)
		s.noSMART = true
		d, err := testClient(t, s, nil).Discover(t.Context())
		if err != nil || d.AuthRequired {
			t.Fatalf("discovery = %+v, %v", d, err)
		}
	})
	t.Run("ErrNotR4", func(t *testing.T) {
		s := newIG(t)
		s.fhirVersion = "5.0.0"
		_, err := testClient(t, s, nil).Discover(t.Context())
		if dtm.ErrorCode(err) != dtm.ENotSupported {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestClient_Status(t *testing.T) {
	s := newIG(t)
	st, err := testClient(t, s, nil).Status(t.Context(), "A12345")
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 3, 1, 10, 0, 0, 123456000, time.UTC)
	if !st.LastUpdated.Equal(want) || st.Freshness != dtm.FreshOK || st.Lag != time.Minute || st.Counts["Patient"] != 2 {
		t.Fatalf("status = %+v", st)
	}
}

func TestClient_KickOff(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s := newIG(t)
		since := time.Date(2025, 3, 1, 9, 0, 0, 1000, time.UTC)
		u, err := testClient(t, s, nil).KickOff(t.Context(), "A12345", KickOffOptions{Since: since})
		if err != nil {
			t.Fatal(err)
		}
		if u != s.srv.URL+"/status/1" {
			t.Fatalf("status URL = %q", u)
		}
		if q := s.kickoffs[0]; !strings.Contains(q, "_since=2025-03-01T09%3A00%3A00.000001Z") || !strings.Contains(q, "_outputFormat=application%2Ffhir%2Bndjson") {
			t.Fatalf("query = %q", q)
		}
	})
	t.Run("TooManyThenOK", func(t *testing.T) {
		s := newIG(t)
		s.kickoff429 = 2
		if _, err := testClient(t, s, nil).KickOff(t.Context(), "A12345", KickOffOptions{}); err != nil {
			t.Fatal(err)
		}
		if len(s.kickoffs) != 3 {
			t.Fatalf("kick-offs = %d, want 3", len(s.kickoffs))
		}
	})
	t.Run("ErrTooManyForLong", func(t *testing.T) {
		s := newIG(t)
		s.kickoff429, s.retryAfter = 5, "86400" // the agreed retrievals are used up for a day
		_, err := testClient(t, s, nil).KickOff(t.Context(), "A12345", KickOffOptions{})
		var se *StatusError
		if dtm.ErrorCode(err) != dtm.ETooMany || !errors.As(err, &se) || se.RetryAfter != 24*time.Hour || len(s.kickoffs) != 1 {
			t.Fatalf("err = %v after %d kick-offs", err, len(s.kickoffs))
		}
	})
	t.Run("ErrOutcome", func(t *testing.T) {
		s := newIG(t)
		s.kickoffFail = http.StatusBadRequest
		_, err := testClient(t, s, nil).KickOff(t.Context(), "A12345", KickOffOptions{})
		if dtm.ErrorCode(err) != dtm.EInvalid || !strings.Contains(err.Error(), "_since is in the future") {
			t.Fatalf("err = %v", err)
		}
	})
}

// renewing hands out "old" until Invalidate is called, then "new".
type renewing struct {
	mu          sync.Mutex
	invalidated bool
}

func (r *renewing) Token(context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.invalidated {
		return "new", nil
	}
	return "old", nil
}

func (r *renewing) Invalidate(tok string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.invalidated = r.invalidated || tok == "old"
}

func TestClient_KickOffRenewsToken(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s := newIG(t)
		s.wantToken = "new"
		if _, err := testClient(t, s, &renewing{}).KickOff(t.Context(), "A12345", KickOffOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrUnauthorized", func(t *testing.T) {
		s := newIG(t)
		s.wantToken = "other"
		_, err := testClient(t, s, &renewing{}).KickOff(t.Context(), "A12345", KickOffOptions{})
		if dtm.ErrorCode(err) != dtm.EUnauthorized || len(s.kickoffs) != 2 {
			t.Fatalf("err = %v after %d kick-offs", err, len(s.kickoffs))
		}
	})
}

func TestClient_Poll(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s := newIG(t)
		s.polls = 3
		s.files["/files/output/Patient"] = []byte("{}\n{}\n")
		var progress []string
		m, raw, err := testClient(t, s, nil).Poll(t.Context(), s.srv.URL+"/status/1", func(p string) { progress = append(progress, p) })
		if err != nil {
			t.Fatal(err)
		}
		if len(progress) != 3 || len(raw) == 0 || len(m.Output) != 1 || m.Output[0].Count != 2 {
			t.Fatalf("progress %v, manifest %+v", progress, m)
		}
		if m.TransactionTime.Nanosecond() != 654321000 {
			t.Fatalf("transactionTime = %v", m.TransactionTime)
		}
	})
	t.Run("ErrGone", func(t *testing.T) {
		s := newIG(t)
		s.pollGone = true
		_, _, err := testClient(t, s, nil).Poll(t.Context(), s.srv.URL+"/status/1", nil)
		if dtm.ErrorCode(err) != dtm.ENotFound {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrCancelled", func(t *testing.T) {
		s := newIG(t)
		s.polls = 1 << 30
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, _, err := testClient(t, s, nil).Poll(ctx, s.srv.URL+"/status/1", nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestClient_Cancel(t *testing.T) {
	s := newIG(t)
	if err := testClient(t, s, nil).Cancel(t.Context(), s.srv.URL+"/status/1"); err != nil || !s.cancelled {
		t.Fatalf("cancelled %v, err %v", s.cancelled, err)
	}
}

func TestClient_DownloadFile(t *testing.T) {
	content := []byte(strings.Repeat(`{"resourceType":"Patient","id":"p"}`+"\n", 100))
	get := func(t *testing.T, s *ig, c *Client, want int64) (FileResult, error) {
		t.Helper()
		m, _, err := c.Poll(t.Context(), s.srv.URL+"/status/1", nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.FileToken(m, m.Output[0].URL)
		if err != nil {
			t.Fatal(err)
		}
		return c.DownloadFile(t.Context(), m.Output[0].URL, tok, filepath.Join(t.TempDir(), "f.ndjson"), want)
	}
	for _, tc := range []struct {
		name  string
		setup func(s *ig)
	}{
		{"OK", func(s *ig) {}},
		{"Gzip", func(s *ig) { s.gzip = true }},
		{"RetryUnavailable", func(s *ig) { s.fail["/files/output/Patient"] = 2 }},
		{"RetryTruncated", func(s *ig) { s.truncate["/files/output/Patient"] = 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newIG(t)
			s.files["/files/output/Patient"] = content
			tc.setup(s)
			res, err := get(t, s, testClient(t, s, staticToken("secret")), 100)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(res.Path)
			if !bytes.Equal(got, content) || res.Lines != 100 || res.Bytes != int64(len(content)) {
				t.Fatalf("result %+v", res)
			}
			for _, a := range s.auth {
				if strings.HasPrefix(a, "/files/") && strings.Contains(a, "secret") {
					t.Fatalf("token sent to a file URL though requiresAccessToken is false: %q", a)
				}
			}
		})
	}
	t.Run("TokenWhenRequired", func(t *testing.T) {
		s := newIG(t)
		s.files["/files/output/Patient"] = content
		s.requireToken = true
		if _, err := get(t, s, testClient(t, s, staticToken("secret")), 100); err != nil {
			t.Fatal(err)
		}
		if a := s.auth[len(s.auth)-1]; a != "/files/output/Patient Bearer secret" {
			t.Fatalf("last request %q", a)
		}
	})
	t.Run("ErrCount", func(t *testing.T) {
		s := newIG(t)
		s.files["/files/output/Patient"] = content
		_, err := get(t, s, testClient(t, s, nil), 99)
		if !errors.Is(err, errCountMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := newIG(t)
		c := testClient(t, s, nil)
		_, err := c.DownloadFile(t.Context(), s.srv.URL+"/files/none", false, filepath.Join(t.TempDir(), "f"), -1)
		if dtm.ErrorCode(err) != dtm.ENotFound {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestClient_FetchBinary(t *testing.T) {
	s := newIG(t)
	content := bytes.Repeat([]byte("binary content "), 10000)
	s.files["/files/Binary/b1"] = content
	s.truncate["/files/Binary/b1"] = 1
	res, err := testClient(t, s, nil).FetchBinary(t.Context(), s.srv.URL+"/files/Binary/b1", false, filepath.Join(t.TempDir(), "b"), 0)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(content)
	if res.Size != int64(len(content)) || res.SHA1 != base64.StdEncoding.EncodeToString(sum[:]) || res.Resumed != 1 {
		t.Fatalf("result %+v", res)
	}
	t.Run("ErrTooLarge", func(t *testing.T) {
		_, err := testClient(t, s, nil).FetchBinary(t.Context(), s.srv.URL+"/files/Binary/b1", false, filepath.Join(t.TempDir(), "b"), 100)
		if dtm.ErrorCode(err) != dtm.ETooLarge {
			t.Fatalf("err = %v", err)
		}
	})
}
