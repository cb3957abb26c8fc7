package target

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Europe/London without a system zoneinfo

	"github.com/dtm-project/dtm"
)

// Schedule says when scheduled pulls start (requirements T2 and S7): at
// least once a week, never sooner than the interval agreed with the
// source after the previous retrieval, optionally at a fixed local time.
type Schedule struct {
	// Every is the interval between pulls; at most dtm.RetrieveWithin.
	Every time.Duration
	// MinInterval is the shortest time allowed between the starts of two
	// retrievals (the frequency agreed with the source); at most Every.
	MinInterval time.Duration
	// At, when not "", is the local time of day "HH:MM" pulls start at,
	// in Location; pulls then run on the first such time at least Every
	// (less 12 hours of slack, so that daily pulls do not drift) after
	// the previous one started.
	At string
	// Location interprets At; Europe/London when nil.
	Location *time.Location
}

// Validate returns an EInvalid error for a schedule that would break T2
// (Every over a week), pull more often than agreed (Every < MinInterval),
// or has a malformed At.
func (s Schedule) Validate() error {
	switch {
	case s.Every <= 0 || s.Every > dtm.RetrieveWithin:
		return dtm.Errorf(dtm.EInvalid, "schedule: the interval must be more than 0 and at most %s (T2)", dtm.RetrieveWithin)
	case s.MinInterval < 0 || s.MinInterval > s.Every:
		return dtm.Errorf(dtm.EInvalid, "schedule: the minimum interval must be between 0 and the interval")
	}
	if _, _, err := parseClock(s.At); s.At != "" && err != nil {
		return err
	}
	return nil
}

// parseClock parses "HH:MM".
func parseClock(at string) (h, m int, err error) {
	hs, ms, ok := strings.Cut(at, ":")
	h, err1 := strconv.Atoi(hs)
	m, err2 := strconv.Atoi(ms)
	if !ok || err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 || len(ms) != 2 {
		return 0, 0, dtm.Errorf(dtm.EInvalid, "schedule: time of day must be HH:MM")
	}
	return h, m, nil
}

// Next returns when the next pull should start, given the time now and
// when the last retrieval started (zero when there was none: then now).
// The result is never before last + MinInterval, and never before now: on
// the spring DST weekend a daily pull at a fixed local time is therefore an
// hour late rather than 23 hours after the previous one (S7).
func (s Schedule) Next(now, last time.Time) time.Time {
	if last.IsZero() {
		return now
	}
	next := last.Add(s.Every)
	if s.At != "" {
		next = s.occurrence(last.Add(s.Every - min(12*time.Hour, s.Every/2)))
	}
	next = maxTime(next, last.Add(s.MinInterval))
	return maxTime(next, now)
}

// occurrence returns the first time at or after t when the clock in
// Location reads At. On a day when that time does not exist (the spring
// DST gap) it is the instant Go's time.Date maps it to, an hour later; on
// a day when it occurs twice (autumn), the first.
func (s Schedule) occurrence(t time.Time) time.Time {
	loc := s.Location
	if loc == nil {
		loc = london
	}
	h, m, _ := parseClock(s.At)
	lt := t.In(loc)
	for i := 0; ; i++ {
		c := time.Date(lt.Year(), lt.Month(), lt.Day()+i, h, m, 0, 0, loc)
		if e := c.Add(-time.Hour).In(loc); e.Hour() == h && e.Minute() == m {
			c = e // the wall time occurs twice: time.Date may pick either
		}
		if !c.Before(t) {
			return c
		}
	}
}

var london = func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err) // unreachable: time/tzdata is embedded
	}
	return loc
}()

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// RunSchedule pulls the practice on schedule s until ctx is done, which is
// the only way it returns (with ctx's error) once s is valid. An
// unfinished pull is resumed at once. After a failure the next attempt
// waits at least 5 minutes, doubling to an hour, or the Retry-After the
// source sent if longer (its agreed retrievals used up), and never comes
// before the next scheduled time when there is no export to resume, so
// that MinInterval holds. onPull, when not nil, is called after
// every attempt.
func (p *Puller) RunSchedule(ctx context.Context, practice string, s Schedule, onPull func(PullResult, error)) error {
	if err := s.Validate(); err != nil {
		return err
	}
	retry := time.Duration(0)
	for {
		next, err := p.nextPull(ctx, practice, s)
		if err != nil {
			return err
		}
		if retry > 0 {
			next = maxTime(next, p.cfg.Clock.Now().Add(retry))
		}
		p.log.Info("next pull", "practice", practice, "at", next)
		if err := sleep(ctx, next.Sub(p.cfg.Clock.Now())); err != nil {
			return err
		}
		res, err := p.Pull(ctx, practice)
		if onPull != nil {
			onPull(res, err)
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			retry = min(max(2*retry, 5*time.Minute), time.Hour)
			var se *StatusError
			if errors.As(err, &se) && se.RetryAfter > retry {
				retry = se.RetryAfter // e.g. the agreed retrievals are used up
			}
			p.log.Error("pull failed; will retry", "practice", practice, "retry_in", retry, "err", err)
		default:
			retry = 0
		}
	}
}

// nextPull returns when the next pull of the practice starts: now when one
// is unfinished, else by the schedule from the last retrieval's start.
func (p *Puller) nextPull(ctx context.Context, practice string, s Schedule) (time.Time, error) {
	now := p.cfg.Clock.Now()
	if _, ok, err := p.cfg.State.ActivePull(ctx, p.cfg.Client.Source(), practice); err != nil {
		return now, fmt.Errorf("active pull: %w", err)
	} else if ok {
		return now, nil
	}
	pulls, err := p.cfg.State.Pulls(ctx, practice, 50)
	if err != nil {
		return now, fmt.Errorf("list pulls: %w", err)
	}
	var last time.Time
	for _, pr := range pulls {
		if pr.Source == p.cfg.Client.Source() && pr.StatusURL != "" && pr.StartedAt.After(last) {
			last = pr.StartedAt
		}
	}
	return s.Next(now, last), nil
}
