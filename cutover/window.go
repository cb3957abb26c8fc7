package cutover

import (
	"fmt"
	"time"

	"github.com/dtm-project/dtm"
)

// Window is the cutover weekend of one cutover date, as absolute instants
// (UTC) computed in Europe/London.
type Window struct {
	Date string // the cutover Friday, "2026-10-23"
	// Start is Friday 17:00 and GoLive Monday 08:00, Europe/London.
	Start  time.Time
	GoLive time.Time
	// ReadinessDeadline is 17:00 Europe/London on the Friday 14 days
	// before: the latest the target may confirm readiness (T6).
	ReadinessDeadline time.Time
}

// Length returns GoLive - Start: 63 hours, or 64 when the clocks go back
// during the weekend and 62 when they go forward.
func (w Window) Length() time.Duration { return w.GoLive.Sub(w.Start) }

// NewWindow returns the window of the cutover date (YYYY-MM-DD, a Friday).
// It returns an EInvalid error when date is malformed or not a Friday.
func NewWindow(date string) (Window, error) {
	london := dtm.London()
	d, err := time.ParseInLocation(time.DateOnly, date, london)
	if err != nil {
		return Window{}, dtm.Errorf(dtm.EInvalid, "cutover date %q is not a date (YYYY-MM-DD)", date)
	}
	if d.Weekday() != time.Friday {
		return Window{}, dtm.Errorf(dtm.EInvalid, "cutover date %s is a %s: the cutover starts at 17:00 on a Friday", date, d.Weekday())
	}
	y, m, day := d.Date()
	return Window{
		Date:              date,
		Start:             time.Date(y, m, day, dtm.CutoverStartHour, 0, 0, 0, london).UTC(),
		GoLive:            time.Date(y, m, day+3, dtm.CutoverGoLiveHour, 0, 0, 0, london).UTC(),
		ReadinessDeadline: time.Date(y, m, day-dtm.ReadinessLeadDays, dtm.CutoverStartHour, 0, 0, 0, london).UTC(),
	}, nil
}

// EarliestDate returns the first Friday whose readiness deadline is still
// ahead of now: the earliest cutover date a plan made at now can have.
func EarliestDate(now time.Time) string {
	d := now.In(dtm.London())
	d = time.Date(d.Year(), d.Month(), d.Day(), 12, 0, 0, 0, d.Location())
	for {
		if d.Weekday() == time.Friday {
			if w, err := NewWindow(d.Format(time.DateOnly)); err == nil && now.Before(w.ReadinessDeadline) {
				return w.Date
			}
		}
		d = d.AddDate(0, 0, 1)
	}
}

// Local formats t in Europe/London with its zone abbreviation (GMT or
// BST), for people: "Fri 23 Oct 2026 17:00 BST".
func Local(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(dtm.London()).Format("Mon 2 Jan 2006 15:04 MST")
}

// hours formats a duration in hours with one decimal: "63.0 h".
func hours(d time.Duration) string { return fmt.Sprintf("%.1f h", d.Hours()) }
