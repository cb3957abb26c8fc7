package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls the demo's output until re matches, and returns the match.
func waitFor(t *testing.T, out *syncBuffer, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
	}
	t.Fatalf("the demo did not print %v in %s:\n%s", re, timeout, out.String())
	return nil
}

// TestDemo_DashboardInBrowser runs the demo and watches the target's
// dashboard in headless Chromium while it runs: the practice and its
// figures appear, the page updates itself (server-sent events) as the
// migration moves on, and a screenshot is saved.
func TestDemo_DashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo end to end takes a while; skipped with -short")
	}
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("DTM_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("DTM_REQUIRE_CHROMIUM=1 but %s is missing", chromium)
		}
		t.Skipf("browser test skipped: %s not found (apt-get install -y chromium)", chromium)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan int, 1)
	args := []string{"demo", "--patients", "100", "--dir", t.TempDir(), "--log-level", "error"}
	go func() { done <- Run(ctx, args, nil, out, &syncBuffer{}) }()

	m := waitFor(t, out, regexp.MustCompile(`target (http://127\.0\.0\.1:\d+)/`), time.Minute)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(m[1]+"/"), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
		t.Fatalf("load the dashboard: %v", err)
	}
	before, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	// Opened before the initial extract, the page, without reloading,
	// follows the migration to its end.
	waitFor(t, out, regexp.MustCompile(`Serving until Ctrl-C`), 3*time.Minute)
	var after string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if after, err = chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main"))); err != nil {
			t.Fatal(err)
		}
		if after != before && strings.Contains(after, "A81001") && strings.Contains(after, "Match") {
			break
		}
	}
	if after == before {
		t.Errorf("the dashboard did not update itself during the demo")
	}
	if !strings.Contains(after, "A81001") || !strings.Contains(after, "Match") {
		t.Errorf("the dashboard does not show the practice and its matching reconciliation at the end:\n%s", after)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if len(png) == 0 {
		t.Fatal("empty screenshot")
	}
	os.WriteFile(filepath.Join(t.TempDir(), "demo-dashboard.png"), png, 0o644)
	if dir := os.Getenv("DTM_SCREENSHOT_DIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, "demo-dashboard.png"), png, 0o644)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK && code != exitInterrupted {
			t.Errorf("dtm demo exited %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Error("dtm demo did not stop after cancellation")
	}
}
