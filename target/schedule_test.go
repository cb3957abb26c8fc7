package target

import (
	"testing"
	"time"
)

func TestSchedule_Next(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	daily := Schedule{Every: 24 * time.Hour, MinInterval: 24 * time.Hour}
	at := func(hhmm string) Schedule { s := daily; s.At = hhmm; return s }
	for _, tc := range []struct {
		name      string
		s         Schedule
		now, last string
		want      string
	}{
		{"FirstPullNow", daily, "2026-03-02T10:00:00Z", "", "2026-03-02T10:00:00Z"},
		{"Interval", daily, "2026-03-02T10:00:00Z", "2026-03-02T09:00:00Z", "2026-03-03T09:00:00Z"},
		{"Overdue", daily, "2026-03-05T10:00:00Z", "2026-03-02T09:00:00Z", "2026-03-05T10:00:00Z"},
		{"AtWinter", at("02:00"), "2026-01-10T03:00:00Z", "2026-01-10T02:00:00Z", "2026-01-11T02:00:00Z"},
		// A pull that started late delays the next by as much (S7).
		{"AtLate", at("02:00"), "2026-01-10T03:00:00Z", "2026-01-10T02:00:05Z", "2026-01-11T02:00:05Z"},
		{"AtSummer", at("02:00"), "2026-07-10T03:00:00Z", "2026-07-10T01:00:00Z", "2026-07-11T01:00:00Z"},
		// 29 March 2026: 01:00 GMT becomes 02:00 BST; 02:00 local does not
		// exist and maps to 03:00 BST = 02:00 UTC.
		{"AtSpringGap", at("02:00"), "2026-03-28T03:00:00Z", "2026-03-28T02:00:00Z", "2026-03-29T02:00:00Z"},
		// 09:00 BST on the Sunday is only 23 h after 09:00 GMT on the
		// Saturday: wait for the agreed 24 h (S7).
		{"AtSpringShortDay", at("09:00"), "2026-03-28T10:00:00Z", "2026-03-28T09:00:00Z", "2026-03-29T09:00:00Z"},
		// 25 October 2026: 02:00 BST becomes 01:00 GMT; 01:30 occurs twice.
		{"AtAutumnTwice", at("01:30"), "2026-10-24T01:00:00Z", "2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z"},
		{"AtAutumnLongDay", at("09:00"), "2026-10-24T09:00:00Z", "2026-10-24T08:00:00Z", "2026-10-25T09:00:00Z"},
		{"Weekly", Schedule{Every: 7 * 24 * time.Hour, MinInterval: 24 * time.Hour, At: "18:00"},
			"2026-03-20T19:00:00Z", "2026-03-20T18:00:00Z", "2026-03-27T18:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Validate(); err != nil {
				t.Fatal(err)
			}
			var last time.Time
			if tc.last != "" {
				last = utc(tc.last)
			}
			if got := tc.s.Next(utc(tc.now), last); !got.Equal(utc(tc.want)) {
				t.Fatalf("Next = %s, want %s", got.UTC().Format(time.RFC3339), tc.want)
			}
		})
	}
}

func TestSchedule_Validate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Schedule
	}{
		{"ErrOverAWeek", Schedule{Every: 8 * 24 * time.Hour}},
		{"ErrMoreOftenThanAgreed", Schedule{Every: time.Hour, MinInterval: 24 * time.Hour}},
		{"ErrAt", Schedule{Every: 24 * time.Hour, At: "25:00"}},
		{"ErrAtShape", Schedule{Every: 24 * time.Hour, At: "2:0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Validate(); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
