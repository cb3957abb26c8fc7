package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

// get serves one request through h and returns the response and body.
func get(t *testing.T, h http.Handler, ctx context.Context, target string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// fixed returns a Provider of d.
func fixed(d Dashboard) Provider {
	return func(context.Context) (Dashboard, error) { return d, nil }
}

func TestHandler_Page(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		h := NewHandler(fixed(testDashboard(fixedNow, 5000)), Options{})
		res, body := get(t, h, context.Background(), "/")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("Content-Security-Policy %q", csp)
		}
		for _, want := range []string{
			// every panel, in order
			">Freshness of the target's copy</h3>", ">Changes per day</h3>", ">Pulls</h3>",
			">Validation findings by rule</h3>", ">Open data issues</h3>", ">Reconciliation</h3>", ">Cutover</h3>",
			// figures, formatted
			"A81001 — Riverside Surgery", "123,456", "7 h 00 min", "Warning: a pull is due, or the source was behind",
			"Tue 13 Oct 2026, 03:30 BST", // last updated, London time
			"1 h 35 min", "1.5 days", "5,000", "source unavailable",
			"nhs-number-check-digit", "NHS numbers fail the check digit", "2 d 2 h", "Overdue",
			"Match", "123,459",
			"10 d 6 h to the window start", "Fri 23 Oct 2026, 17:00 BST", "Mon 26 Oct 2026, 08:00 GMT", "Confirmed",
			"2 of 4 steps", `<progress id="p-A81001-progress" max="4" value="2">`,
			// the lag chart, its limit (T2 on the target) and its table alternative
			"7 days: weekly pull (T2)", "Lag history as a table (49 points)",
			// the empty practice
			"Breach: no pull within 7 days", "Not recorded yet.",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if strings.Contains(body, "NaN") || strings.Contains(body, "Inf") {
			t.Error("page has NaN or Inf coordinates")
		}
	})
	t.Run("SourceLimits", func(t *testing.T) {
		// The source's freshness is judged by S3's 6 h and 12 h limits.
		d := testDashboard(fixedNow, 5000)
		d.Role = RoleSource
		_, body := get(t, NewHandler(fixed(d), Options{}), context.Background(), "/")
		for _, want := range []string{"Warning: over 6 h behind", "6 h: warning", "12 h: breach", "Breach: over 12 h behind"} {
			if !strings.Contains(body, want) {
				t.Errorf("source page lacks %q", want)
			}
		}
	})
	t.Run("Empty", func(t *testing.T) {
		for name, d := range map[string]Dashboard{
			"none":        {},
			"bare":        {Practices: []PracticeView{{ODS: "A81001"}}},
			"emptyPanels": {Role: RoleSource, Practices: []PracticeView{{ODS: "A81001", Changes: &ChangesView{}, Pulls: &PullsView{LastConsume: -1}, Findings: &FindingsView{}, Issues: &IssuesView{}, Reconcile: &ReconcileView{}, Cutover: &CutoverView{}}}},
			"zeroCounts":  {Practices: []PracticeView{{ODS: "A81001", Changes: &ChangesView{Days: []DayCount{{Day: fixedNow}}}, Freshness: FreshnessView{History: []Point{{At: fixedNow}}}}}},
		} {
			t.Run(name, func(t *testing.T) {
				res, body := get(t, NewHandler(fixed(d), Options{}), context.Background(), "/")
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status %d", res.StatusCode)
				}
				if strings.Contains(body, "NaN") || strings.Contains(body, "Inf") {
					t.Error("page has NaN or Inf coordinates")
				}
				checkAccessible(t, body)
			})
		}
	})
	t.Run("ErrProvider", func(t *testing.T) {
		p := func(context.Context) (Dashboard, error) {
			return Dashboard{}, errors.New("db is on fire at /secret/path")
		}
		res, body := get(t, NewHandler(p, Options{}), context.Background(), "/")
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", res.StatusCode)
		}
		if !strings.Contains(body, `role="alert"`) || strings.Contains(body, "secret") {
			t.Errorf("want a generic alert without the error's detail:\n%s", body)
		}
	})
	t.Run("GeneratedAtFromClock", func(t *testing.T) {
		clock := dtm.ClockFunc(func() time.Time { return fixedNow })
		_, body := get(t, NewHandler(fixed(Dashboard{}), Options{Clock: clock}), context.Background(), "/")
		if !strings.Contains(body, `datetime="2026-10-13T09:30:00Z"`) {
			t.Error("GeneratedAt not taken from the clock")
		}
	})
}

func TestHandler_Accessibility(t *testing.T) {
	_, body := get(t, NewHandler(fixed(testDashboard(fixedNow, 1)), Options{}), context.Background(), "/")
	checkAccessible(t, body)
	if n := strings.Count(body, "<svg"); n != 2 { // lag and changes of A81001
		t.Errorf("%d charts, want 2", n)
	}
	if n := strings.Count(body, "<details"); n < 2 {
		t.Errorf("%d data tables behind <details>, want at least 2 (one per chart with data)", n)
	}
	for _, want := range []string{`<html lang="en-GB">`, "<header", "<nav", `<main id="main"`, "<footer", `class="skip" href="#main"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

var (
	svgRE     = regexp.MustCompile(`(?s)<svg\b([^>]*)>(.*?)</svg>`)
	tableRE   = regexp.MustCompile(`(?s)<table>(.*?)</table>`)
	headingRE = regexp.MustCompile(`<h([1-6])\b`)
	idRE      = regexp.MustCompile(`\sid="([^"]+)"`)
	thRE      = regexp.MustCompile(`<th\b[^>]*>`)
	imgRE     = regexp.MustCompile(`<img\b[^>]*>`)
)

// checkAccessible checks the basics: every chart has a title and a
// description it is labelled by, every table a caption and header cells
// with a scope, headings in order, ids unique.
func checkAccessible(t *testing.T, body string) {
	t.Helper()
	for _, m := range svgRE.FindAllStringSubmatch(body, -1) {
		attrs, inner := m[1], m[2]
		if !strings.Contains(attrs, `role="img"`) || !strings.Contains(attrs, "aria-labelledby=") {
			t.Errorf("svg without role=img and aria-labelledby: %s", attrs)
		}
		if !strings.HasPrefix(strings.TrimSpace(inner), "<title id=") || !strings.Contains(inner, "<desc id=") {
			t.Errorf("svg without a leading <title> and a <desc>: %.200s", inner)
		}
	}
	for _, m := range imgRE.FindAllString(body, -1) {
		if !strings.Contains(m, "alt=") {
			t.Errorf("img without alt: %s", m)
		}
	}
	for _, m := range tableRE.FindAllStringSubmatch(body, -1) {
		if !strings.Contains(m[1], "<caption") || !strings.Contains(m[1], "<thead>") {
			t.Errorf("table without caption or thead: %.200s", m[1])
		}
		ths := thRE.FindAllString(m[1], -1)
		if len(ths) == 0 {
			t.Errorf("table without th: %.200s", m[1])
		}
		for _, th := range ths {
			if !strings.Contains(th, "scope=") {
				t.Errorf("th without scope: %s", th)
			}
		}
	}
	last := 0
	for _, m := range headingRE.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.Atoi(m[1])
		if n > last+1 {
			t.Errorf("heading h%d follows h%d", n, last)
		}
		last = n
	}
	seen := map[string]bool{}
	for _, m := range idRE.FindAllStringSubmatch(body, -1) {
		if seen[m[1]] {
			t.Errorf("duplicate id %q", m[1])
		}
		seen[m[1]] = true
	}
}

func TestHandler_Principal(t *testing.T) {
	h := NewHandler(fixed(testDashboard(fixedNow, 1)), Options{})
	for _, tc := range []struct {
		name       string
		ctx        context.Context
		want, not  []string
		wantEvents bool
	}{
		{"None", context.Background(), []string{"p-A81001", "p-B82002"}, nil, true},
		{"All", dtm.NewContextWithPrincipal(context.Background(), dtm.Principal{Practices: []string{dtm.AllPractices}}),
			[]string{"p-A81001", "p-B82002"}, nil, true},
		{"One", dtm.NewContextWithPrincipal(context.Background(), dtm.Principal{Client: "tss", Practices: []string{"B82002"}}),
			[]string{"p-B82002"}, []string{"p-A81001", "Riverside"}, true},
		{"NoPractices", dtm.NewContextWithPrincipal(context.Background(), dtm.Principal{Client: "x"}),
			[]string{"No practices to show."}, []string{"p-A81001", "p-B82002"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, page := get(t, h, tc.ctx, "/")
			ev, err := h.event(tc.ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(page, n) || strings.Contains(ev, n) {
					t.Errorf("page or event shows %q", n)
				}
			}
		})
	}
}

func TestHandler_Static(t *testing.T) {
	h := NewHandler(fixed(Dashboard{}), Options{})
	_, page := get(t, h, context.Background(), "/")
	for _, tc := range []struct{ name, ctype string }{{"dashboard.css", "text/css"}, {"dashboard.js", "text/javascript"}} {
		m := regexp.MustCompile(`"(/dashboard/static/[0-9a-f]+/` + regexp.QuoteMeta(tc.name) + `)"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("page does not link %s", tc.name)
		}
		res, body := get(t, h, context.Background(), m[1])
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), tc.ctype) || len(body) < 100 {
			t.Errorf("%s: status %d, type %q, %d bytes", m[1], res.StatusCode, res.Header.Get("Content-Type"), len(body))
		}
	}
	for _, p := range []string{"/dashboard/static/x/nope.css", "/other", "/events/x"} {
		if res, _ := get(t, h, context.Background(), p); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, res.StatusCode)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", rec.Code)
	}
}
