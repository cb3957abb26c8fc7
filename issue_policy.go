package dtm

import (
	"sync"
	"time"
	_ "time/tzdata" // Europe/London without a system zoneinfo
)

// DefaultAcknowledgeWithin is how many working days the source has to
// respond to a data issue when no IssuePolicy says otherwise (S6).
const DefaultAcknowledgeWithin = 1

// IssuePolicy is the response-time target for data issues: the source
// responds (acknowledges, answers, resolves or rejects) within
// AcknowledgeWithin working days of the issue reaching it. Working days are
// Monday to Friday in Location, less Holidays. The zero value is the default
// policy: one working day in Europe/London, no holidays.
type IssuePolicy struct {
	AcknowledgeWithin int            // working days; DefaultAcknowledgeWithin when 0
	Location          *time.Location // Europe/London when nil
	// Holidays are local dates ("2026-12-25") that are not working days,
	// e.g. the bank holidays of England and Wales.
	Holidays []string
}

var london = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil { // unreachable: time/tzdata is embedded
		panic("dtm: load Europe/London: " + err.Error())
	}
	return loc
})

// London returns the Europe/London time zone (embedded: no system zoneinfo
// needed).
func London() *time.Location { return london() }

func (p IssuePolicy) loc() *time.Location {
	if p.Location != nil {
		return p.Location
	}
	return London()
}

// workingDay reports whether the local date of t is a working day.
func (p IssuePolicy) workingDay(t time.Time) bool {
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	d := t.Format(time.DateOnly)
	for _, h := range p.Holidays {
		if h == d {
			return false
		}
	}
	return true
}

// AcknowledgeBy returns when the response to an issue that reached the
// source at from is due: AcknowledgeWithin working days later, at the same
// local wall-clock time. An issue that arrives outside a working day starts
// at 00:00 of the next working day. So with one working day, Friday 16:00
// is due Monday 16:00, and Saturday 10:00 is due Tuesday 00:00.
func (p IssuePolicy) AcknowledgeBy(from time.Time) time.Time {
	n := p.AcknowledgeWithin
	if n <= 0 {
		n = DefaultAcknowledgeWithin
	}
	t := from.In(p.loc())
	for !p.workingDay(t) {
		t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, t.Location())
	}
	y, m, d := t.Date()
	hh, mm, ss := t.Clock()
	for n > 0 {
		d++
		day := time.Date(y, m, d, 12, 0, 0, 0, t.Location())
		if p.workingDay(day) {
			n--
		}
	}
	return time.Date(y, m, d, hh, mm, ss, t.Nanosecond(), t.Location())
}

// IssueTiming is where an issue stands against the response-time target.
type IssueTiming struct {
	// Due is when the source's response is (or was) due; zero for a closed
	// issue the source never had to answer.
	Due time.Time
	// ResponseTime is how long the source took to respond; zero while it
	// has not.
	ResponseTime time.Duration
	// Overdue is true when the source has not responded and Due has
	// passed; Late when it responded after Due.
	Overdue, Late bool
	// WaitingOn is "source" (open, acknowledged), "target" (answered,
	// resolved, rejected) or "" (closed).
	WaitingOn string
}

// Timing returns the issue's timing at now.
func (p IssuePolicy) Timing(i DataIssue, now time.Time) IssueTiming {
	var t IssueTiming
	switch i.Status {
	case IssueOpen, IssueAcknowledged:
		t.WaitingOn = "source"
	case IssueAnswered, IssueResolved, IssueRejected:
		t.WaitingOn = "target"
	}
	if i.AwaitingSince.IsZero() {
		return t
	}
	t.Due = p.AcknowledgeBy(i.AwaitingSince).UTC()
	switch {
	case !i.RespondedAt.IsZero():
		t.ResponseTime = i.RespondedAt.Sub(i.AwaitingSince)
		t.Late = i.RespondedAt.After(t.Due)
	case i.Status != IssueClosed:
		t.Overdue = now.After(t.Due)
	}
	return t
}
