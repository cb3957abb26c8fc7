package web

import (
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFmtDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0 s"}, {0, "0 s"}, {59 * time.Second, "59 s"}, {time.Minute, "1 min"},
		{59*time.Minute + 59*time.Second, "59 min"}, {time.Hour, "1 h 00 min"}, {2*time.Hour + 5*time.Minute, "2 h 05 min"},
		{24 * time.Hour, "1 d 0 h"}, {3*24*time.Hour + 4*time.Hour + 59*time.Minute, "3 d 4 h"},
	} {
		if got := fmtDuration(tc.d); got != tc.want {
			t.Errorf("fmtDuration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestFmtCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 123456: "123,456",
		-1234567: "-1,234,567", math.MaxInt64: "9,223,372,036,854,775,807"} {
		if got := fmtCount(n); got != want {
			t.Errorf("fmtCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFmtTime(t *testing.T) {
	for _, tc := range []struct {
		t           time.Time
		text, short string
	}{
		{time.Time{}, "never", "—"},
		{time.Date(2026, 10, 23, 16, 0, 0, 0, time.UTC), "Fri 23 Oct 2026, 17:00 BST", "23 Oct 17:00"},
		{time.Date(2026, 10, 26, 8, 0, 0, 0, time.UTC), "Mon 26 Oct 2026, 08:00 GMT", "26 Oct 08:00"},
	} {
		if got := fmtTime(tc.t); got.Text != tc.text || got.Short != tc.short {
			t.Errorf("fmtTime(%s) = %+v, want %q, %q", tc.t, got, tc.text, tc.short)
		}
	}
}

func TestFmtDays(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0.0 days", 24 * time.Hour: "1.0 day", 36 * time.Hour: "1.5 days",
		8 * 24 * time.Hour: "8.0 days"} {
		if got := fmtDays(d); got != want {
			t.Errorf("fmtDays(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestLagChart(t *testing.T) {
	t.Run("Clipped", func(t *testing.T) {
		c := lagChart("x", []Point{{fixedNow.Add(-time.Hour), 100}, {fixedNow, 1}}, fixedNow, false)
		if !c.Clipped || c.YTicks[len(c.YTicks)-1].Label != "48 h" {
			t.Errorf("a 100 h lag: clipped %v, top tick %+v; want clipped at 48 h", c.Clipped, c.YTicks[len(c.YTicks)-1])
		}
	})
	t.Run("TargetWeekly", func(t *testing.T) {
		// The target's copy lags by days between weekly pulls: its chart
		// shows them against the 7-day line of T2, not clipped at 48 h.
		c := lagChart("x", []Point{{fixedNow.Add(-6 * 24 * time.Hour), 2}, {fixedNow, 146}}, fixedNow, true)
		if c.Clipped || len(c.Lines) != 1 || !strings.Contains(c.Lines[0].Label, "7 days") {
			t.Errorf("clipped %v, lines %+v; want one 7-day line and no clipping", c.Clipped, c.Lines)
		}
		if !strings.Contains(c.Desc, "T2") {
			t.Errorf("description %q does not name T2", c.Desc)
		}
	})
	t.Run("AcrossDST", func(t *testing.T) {
		// The clocks go back at 02:00 BST on Sunday 25 October 2026.
		from := time.Date(2026, 10, 23, 0, 0, 0, 0, time.UTC)
		now := from.Add(5 * 24 * time.Hour)
		c := lagChart("x", []Point{{from, 1}, {now, 2}}, now, false)
		for _, tk := range c.XTicks {
			if tk.Label[0] < 'A' || tk.Label[0] > 'Z' {
				t.Errorf("day tick %q is not a day name", tk.Label)
			}
			if tk.Pos < c.Plot.X || tk.Pos > c.Plot.X+c.Plot.W {
				t.Errorf("tick %+v outside the plot", tk)
			}
		}
		if len(c.XTicks) < 4 || len(c.XTicks) > 7 {
			t.Errorf("%d ticks over 5 days", len(c.XTicks))
		}
	})
}

// TestCSS_Contrast checks the colour pairs of dashboard.css against WCAG
// 2.1 AA: 4.5:1 for text, 3:1 for chart lines and bars.
func TestCSS_Contrast(t *testing.T) {
	css, err := os.ReadFile("static/dashboard.css")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`--([a-z-]+):\s*(#[0-9a-f]{6});`).FindAllStringSubmatch(string(css), -1) {
		vars[m[1]] = m[2]
	}
	for _, tc := range []struct {
		fg, bg string
		min    float64
	}{
		{"fg", "bg", 4.5}, {"fg", "panel", 4.5}, {"muted", "bg", 4.5}, {"muted", "panel", 4.5},
		{"link", "bg", 4.5}, {"link", "panel", 4.5},
		{"ok-fg", "ok-bg", 4.5}, {"warning-fg", "warning-bg", 4.5}, {"breach-fg", "breach-bg", 4.5},
		{"neutral-fg", "neutral-bg", 4.5},
		{"chart-warn", "bg", 4.5}, {"chart-breach", "bg", 4.5}, // also label text
		{"chart-lag", "bg", 3}, {"chart-bar", "bg", 3},
	} {
		fg, bg := vars[tc.fg], vars[tc.bg]
		if fg == "" || bg == "" {
			t.Errorf("--%s or --%s not declared", tc.fg, tc.bg)
			continue
		}
		if r := contrast(fg, bg); r < tc.min {
			t.Errorf("--%s on --%s: contrast %.2f, want at least %.1f", tc.fg, tc.bg, r, tc.min)
		}
	}
}

// contrast is the WCAG contrast ratio of two #rrggbb colours.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

func luminance(hex string) float64 {
	var l float64
	for i, w := range []float64{0.2126, 0.7152, 0.0722} {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			c /= 12.92
		} else {
			c = math.Pow((c+0.055)/1.055, 2.4)
		}
		l += w * c
	}
	return l
}
