package web

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

// timeText is an instant as the page shows it: words for people and an
// ISO 8601 value for the <time> element.
type timeText struct {
	Text  string // "Fri 23 Oct 2026, 17:00 BST", or "never"
	Short string // "23 Oct 17:00", or "—", for tables
	ISO   string // RFC 3339, "" for the zero time
}

// fmtTime formats t in Europe/London, where every practice is.
func fmtTime(t time.Time) timeText {
	if t.IsZero() {
		return timeText{Text: "never", Short: "—"}
	}
	l := t.In(dtm.London())
	return timeText{
		Text:  l.Format("Mon 2 Jan 2006, 15:04 MST"),
		Short: l.Format("2 Jan 15:04"),
		ISO:   t.UTC().Format(time.RFC3339),
	}
}

// fmtClock formats t as a London time of day with seconds.
func fmtClock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.In(dtm.London()).Format("15:04:05 MST")
}

// fmtDuration formats d for people, to the two largest units: "45 s",
// "12 min", "2 h 05 min", "3 d 4 h". Negative durations are written as 0 s.
func fmtDuration(d time.Duration) string {
	if d < time.Minute {
		return strconv.Itoa(int(max(d, 0)/time.Second)) + " s"
	}
	if d < time.Hour {
		return strconv.Itoa(int(d/time.Minute)) + " min"
	}
	if d < 24*time.Hour {
		return fmt.Sprintf("%d h %02d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%d d %d h", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// fmtDays formats d as days with one decimal: "3.2 days".
func fmtDays(d time.Duration) string {
	days := d.Hours() / 24
	if days > -0.05 && days < 0.05 {
		days = 0
	}
	unit := "days"
	if fmt.Sprintf("%.1f", days) == "1.0" {
		unit = "day"
	}
	return fmt.Sprintf("%.1f %s", days, unit)
}

// fmtCount formats n with thousands separators: "12,345".
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtHours formats a value in hours with one decimal: "5.3 h".
func fmtHours(h float64) string { return strconv.FormatFloat(h, 'f', 1, 64) + " h" }

// badge is a status shown as words and a colour class (never colour
// alone).
type badge struct {
	Class string // ok, warning, breach, neutral
	Text  string
}

// freshnessBadge describes a freshness state.
func freshnessBadge(state string, target bool) badge {
	if target { // the target's copy is judged by T2 (see FreshnessView)
		switch state {
		case dtm.FreshOK:
			return badge{"ok", "OK (pulled within 7 days)"}
		case dtm.FreshWarning:
			return badge{"warning", "Warning: a pull is due, or the source was behind"}
		case dtm.FreshBreach:
			return badge{"breach", "Breach: no pull within 7 days"}
		}
		return badge{"neutral", "Unknown"}
	}
	switch state {
	case dtm.FreshOK:
		return badge{"ok", "OK (within 6 h)"}
	case dtm.FreshWarning:
		return badge{"warning", "Warning: over 6 h behind"}
	case dtm.FreshBreach:
		return badge{"breach", "Breach: over 12 h behind"}
	}
	return badge{"neutral", "Unknown"}
}

// okBadge is "OK" or a breach with the given text.
func okBadge(ok bool, breach string) badge {
	if ok {
		return badge{"ok", "OK"}
	}
	return badge{"breach", breach}
}
