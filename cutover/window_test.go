package cutover_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/cutover"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNewWindow(t *testing.T) {
	for _, tc := range []struct {
		name, date            string
		start, goLive, before string
		hours                 float64
	}{
		// The Fridays before the last Sundays of March (clocks go forward:
		// 62 h) and October (clocks go back: 64 h), 2026 and 2027.
		{"SpringForward2026", "2026-03-27", "2026-03-27T17:00:00Z", "2026-03-30T07:00:00Z", "2026-03-13T17:00:00Z", 62},
		{"FallBack2026", "2026-10-23", "2026-10-23T16:00:00Z", "2026-10-26T08:00:00Z", "2026-10-09T16:00:00Z", 64},
		{"SpringForward2027", "2027-03-26", "2027-03-26T17:00:00Z", "2027-03-29T07:00:00Z", "2027-03-12T17:00:00Z", 62},
		{"FallBack2027", "2027-10-29", "2027-10-29T16:00:00Z", "2027-11-01T08:00:00Z", "2027-10-15T16:00:00Z", 64},
		{"Winter", "2026-12-04", "2026-12-04T17:00:00Z", "2026-12-07T08:00:00Z", "2026-11-20T17:00:00Z", 63},
		{"Summer", "2026-06-12", "2026-06-12T16:00:00Z", "2026-06-15T07:00:00Z", "2026-05-29T16:00:00Z", 63},
		// The deadline is 17:00 local 14 days before, even when the clocks
		// changed in between (13 days 23 hours before the start).
		{"DeadlineAcrossDST", "2026-04-10", "2026-04-10T16:00:00Z", "2026-04-13T07:00:00Z", "2026-03-27T17:00:00Z", 63},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := cutover.NewWindow(tc.date)
			if err != nil {
				t.Fatal(err)
			}
			if !w.Start.Equal(utc(tc.start)) || !w.GoLive.Equal(utc(tc.goLive)) || !w.ReadinessDeadline.Equal(utc(tc.before)) {
				t.Errorf("window = %v → %v, deadline %v; want %s → %s, deadline %s", w.Start, w.GoLive, w.ReadinessDeadline, tc.start, tc.goLive, tc.before)
			}
			if got := w.Length().Hours(); got != tc.hours {
				t.Errorf("length = %v h, want %v h", got, tc.hours)
			}
			london := dtm.London()
			if s, g := w.Start.In(london), w.GoLive.In(london); s.Weekday() != time.Friday || s.Hour() != 17 ||
				g.Weekday() != time.Monday || g.Hour() != 8 {
				t.Errorf("local window = %v → %v, want Friday 17:00 → Monday 08:00", s, g)
			}
		})
	}
	t.Run("ErrInvalid", func(t *testing.T) {
		for date, want := range map[string]string{
			"2026-03-26": "Thursday", "2026-03-28": "Saturday", "2026-02-30": "not a date", "27/03/2026": "not a date", "": "not a date",
		} {
			_, err := cutover.NewWindow(date)
			if dtm.ErrorCode(err) != dtm.EInvalid || !strings.Contains(dtm.ErrorMessage(err), want) {
				t.Errorf("NewWindow(%q) = %v, want invalid mentioning %q", date, err, want)
			}
		}
	})
}

func TestEarliestDate(t *testing.T) {
	for now, want := range map[string]string{
		"2026-03-01T10:00:00Z": "2026-03-20", // deadline Fri 6 March 17:00 still ahead
		"2026-03-06T16:59:00Z": "2026-03-20",
		"2026-03-06T17:00:00Z": "2026-03-27", // that deadline has just passed
		"2026-10-09T15:59:00Z": "2026-10-23", // BST: the deadline is 16:00 UTC
		"2026-10-09T16:00:00Z": "2026-10-30",
	} {
		if got := cutover.EarliestDate(utc(now)); got != want {
			t.Errorf("EarliestDate(%s) = %s, want %s", now, got, want)
		}
	}
}
