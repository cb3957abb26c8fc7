package main

import (
	"sync"
	"time"
	_ "time/tzdata" // Europe/London on every machine
)

// virtualClock is the demo's clock: every component (both stores, the
// authorisation server, the client's assertions, the simulator) reads it, and
// the demo moves it forward so that weeks of a migration pass in minutes.
// Between jumps it runs at real speed, so timeouts and token lifetimes
// behave. It is safe for concurrent use.
type virtualClock struct {
	mu     sync.Mutex
	at     time.Time // virtual time at wall time `since`
	since  time.Time
	wallFn func() time.Time
}

func newVirtualClock(start time.Time) *virtualClock {
	return &virtualClock{at: start, since: time.Now(), wallFn: time.Now}
}

// Now returns the virtual time.
func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at.Add(c.wallFn().Sub(c.since))
}

// Set moves the clock to t if t is later than now; it never goes back, so
// commit times stay increasing.
func (c *virtualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.at.Add(c.wallFn().Sub(c.since))
	if t.After(now) {
		c.at, c.since = t, c.wallFn()
	}
}

// london is the practice's time zone, in which the demo tells its times.
var london = func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err) // unreachable: time/tzdata is embedded
	}
	return loc
}()
