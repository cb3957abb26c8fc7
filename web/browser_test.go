package web

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// needChromium returns the browser's path, or skips the test when it is
// not installed (fails instead when DTM_REQUIRE_CHROMIUM=1, as in CI).
func needChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("DTM_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("DTM_REQUIRE_CHROMIUM=1 but %s is missing: apt-get install -y chromium", chromiumPath)
		}
		t.Skipf("browser test skipped: %s not found (apt-get install -y chromium; set DTM_REQUIRE_CHROMIUM=1 to fail instead)", chromiumPath)
	}
	return chromiumPath
}

// newBrowser starts a headless Chromium with a fresh profile and returns
// a tab's context. The browser is stopped when the test ends.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(needChromium(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900), // a laptop screen
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// text returns the visible text of the first element matching the CSS
// selector.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// TestBrowser_Dashboard loads the dashboard in headless Chromium, checks
// the key figures and the accessibility basics in the real DOM, waits for
// a server-sent update to change a figure, and saves a screenshot (also
// into $DTM_SCREENSHOT_DIR when set).
func TestBrowser_Dashboard(t *testing.T) {
	ctx := newBrowser(t, 3*time.Minute)
	var received atomic.Int64
	received.Store(5000)
	h := NewHandler(func(context.Context) (Dashboard, error) {
		return testDashboard(fixedNow, received.Load()), nil
	}, Options{Interval: 2 * time.Second})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close) // end the stream before srv.Close waits for it

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#p-A81001"))); err != nil {
		t.Fatalf("load dashboard: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want string }{
		{title, "dtm target — dashboard"},
		{text(t, ctx, "#p-A81001-h"), "A81001 — Riverside Surgery"},
		{text(t, ctx, `#p-A81001 [data-figure="lag"]`), "7 h 00 min"},
		{text(t, ctx, `#p-A81001 [data-figure="received"]`), "5,000"},
		{text(t, ctx, `#p-A81001 [data-figure="consume"]`), "1 h 35 min"},
		{text(t, ctx, `#p-A81001 [data-figure="since-retrieval"]`), "1.5 days"},
		{text(t, ctx, `#p-A81001 [data-figure="open-issues"]`), "1"},
		{text(t, ctx, `#p-A81001 [data-figure="reconcile"]`), "Match"},
		{text(t, ctx, `#p-A81001 [data-figure="countdown"]`), "10 d 6 h to the window start"},
	} {
		if c.got != c.want {
			t.Errorf("shows %q, want %q", c.got, c.want)
		}
	}
	checks, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]int](a11yScript))
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range checks {
		if n != 0 {
			t.Errorf("accessibility: %d %s", n, name)
		}
	}

	// The script connects to the event stream, and an update pushed by
	// Notify reaches the page.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#live[data-state="live"]`))); err != nil {
		t.Fatalf("live updates never started: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("p-B82002").dataset.mark = "kept"`)); err != nil {
		t.Fatal(err)
	}
	received.Store(6543)
	h.Notify()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`document.querySelector('#p-A81001 [data-figure="received"]').textContent === "6,543"`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the received count did not change to 6,543 after Notify: %v", err)
	}
	if mark, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("p-B82002").dataset.mark || ""`)); err != nil {
		t.Fatal(err)
	} else if mark != "kept" {
		t.Error("the update replaced a practice whose figures had not changed")
	}

	// Keyboard: the first Tab reaches the skip link, and Enter follows it.
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
		t.Fatal(err)
	}
	first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.className`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	hash, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash`))
	if err != nil {
		t.Fatal(err)
	}
	if first != "skip" || hash != "#main" {
		t.Errorf("first Tab focuses %q and Enter goes to %q; want the skip link and #main", first, hash)
	}

	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement.blur(); window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	saveScreenshot(t, "dashboard.png", png)
}

// TestBrowser_NoScript checks that with JavaScript disabled the page is
// complete: every panel is there, only the live status stays static.
func TestBrowser_NoScript(t *testing.T) {
	ctx := newBrowser(t, 2*time.Minute)
	h := NewHandler(fixed(testDashboard(fixedNow, 5000)), Options{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#p-A81001"))); err != nil {
		t.Fatalf("load dashboard: %v", err)
	}
	panels, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#p-A81001 section.panel").length`))
	if err != nil {
		t.Fatal(err)
	}
	if live := text(t, ctx, "#live"); panels != 7 || !strings.HasPrefix(live, "Static page") {
		t.Errorf("without JavaScript: %d panels, live status %q; want 7 and the static notice", panels, live)
	}
}

// a11yScript counts accessibility problems in the live DOM.
const a11yScript = `(() => {
	const svgs = [...document.querySelectorAll("svg")];
	const ths = [...document.querySelectorAll("th")];
	const hs = [...document.querySelectorAll("h1,h2,h3,h4,h5,h6")].map(h => +h.tagName[1]);
	return {
		"charts without a title first": svgs.filter(s => !(s.firstElementChild && s.firstElementChild.tagName === "title")).length,
		"charts without a desc": svgs.filter(s => !s.querySelector(":scope > desc")).length,
		"charts without a label": svgs.filter(s => !s.getAttribute("aria-labelledby")).length,
		"images without alt": document.querySelectorAll("img:not([alt])").length,
		"tables without th": [...document.querySelectorAll("table")].filter(t => !t.querySelector("th")).length,
		"th without scope": ths.filter(th => !th.getAttribute("scope")).length,
		"headings out of order": hs.filter((n, i) => n > (i ? hs[i-1] : 0) + 1).length,
		"missing landmarks": ["header", "nav", "main", "footer"].filter(s => !document.querySelector(s)).length,
	};
})()`

// saveScreenshot writes png into the test's temporary directory and, when
// DTM_SCREENSHOT_DIR is set, there too.
func saveScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	dirs := []string{t.TempDir()}
	if d := os.Getenv("DTM_SCREENSHOT_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatalf("save screenshot: %v", err)
		}
		t.Logf("screenshot: %s (%d bytes)", p, len(png))
	}
}
