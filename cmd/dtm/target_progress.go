package main

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dtm-project/dtm/target"
)

// phaseState is the progress of one phase of a pull, overall and per
// resource type.
type phaseState struct {
	name  string
	total int64 // -1 when unknown
	done  int64
	start time.Time
	types map[string]*typeState
}

type typeState struct {
	total       int64 // -1 when unknown
	done        int64
	first, last time.Time // of the first and latest progress
}

// rate is the type's rate: since its first progress, until now or, once
// it is finished, until its last progress.
func (t *typeState) rate(now time.Time) float64 {
	if t.total >= 0 && t.done >= t.total {
		now = t.last
	}
	return rate(t.done, t.first, now)
}

func newPhase(name string, total int64, now time.Time) *phaseState {
	return &phaseState{name: name, total: total, start: now, types: map[string]*typeState{}}
}

func (ph *phaseState) setTypes(totals map[string]int64) {
	for typ, n := range totals {
		ph.typ(typ).total = n
	}
}

func (ph *phaseState) typ(name string) *typeState {
	t := ph.types[name]
	if t == nil {
		t = &typeState{total: -1}
		ph.types[name] = t
	}
	return t
}

func (ph *phaseState) add(typ string, n int64, now time.Time) {
	ph.done += n
	t := ph.typ(typ)
	if t.first.IsZero() {
		t.first = now
	}
	t.done, t.last = t.done+n, now
}

// rate returns units per second since since.
func rate(n int64, since, now time.Time) float64 {
	if s := now.Sub(since).Seconds(); s > 0 && !since.IsZero() {
		return float64(n) / s
	}
	return 0
}

// progressBars draws target.Progress events on a terminal: per phase, an
// overall bar with count, percentage, rate and time left, and a bar per
// resource type (the unfinished first, at most maxTypeLines of them),
// redrawn in place at most every 200 ms. It is safe for concurrent use.
type progressBars struct {
	w     io.Writer
	now   func() time.Time
	mu    sync.Mutex
	ph    *phaseState
	lines int // lines of the block on screen
	drawn time.Time
}

var (
	_ target.Progress     = (*progressBars)(nil)
	_ target.TypeProgress = (*progressBars)(nil)
)

func newProgressBars(w io.Writer) *progressBars { return &progressBars{w: w, now: time.Now} }

// Start begins a phase.
func (p *progressBars) Start(phase string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ph, p.lines = newPhase(phase, total, p.now()), 0
	p.draw(true)
}

// StartTypes sets the phase's expected totals per type.
func (p *progressBars) StartTypes(phase string, totals map[string]int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ph == nil || phase != p.ph.name {
		return
	}
	p.ph.setTypes(totals)
	p.draw(true)
}

// Add records progress.
func (p *progressBars) Add(phase, typ string, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ph == nil || phase != p.ph.name {
		return
	}
	p.ph.add(typ, n, p.now())
	p.draw(false)
}

// Done ends a phase, leaving its last state on screen.
func (p *progressBars) Done(phase string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ph == nil || phase != p.ph.name {
		return
	}
	p.draw(true)
	io.WriteString(p.w, "\n")
	p.ph, p.lines = nil, 0
}

const (
	barWidth     = 24
	maxTypeLines = 8
)

// draw redraws the phase's block, unless it was drawn less than 200 ms
// ago: back to its first line, clear to the end of the screen, write.
func (p *progressBars) draw(force bool) {
	now := p.now()
	if !force && now.Sub(p.drawn) < 200*time.Millisecond {
		return
	}
	p.drawn = now
	lines := renderPhase(p.ph, now)
	var b strings.Builder
	b.WriteString("\r")
	if p.lines > 1 {
		fmt.Fprintf(&b, "\x1b[%dA", p.lines-1)
	}
	b.WriteString("\x1b[J")
	b.WriteString(strings.Join(lines, "\n"))
	p.lines = len(lines)
	io.WriteString(p.w, b.String())
}

// renderPhase returns the lines showing a phase at now.
func renderPhase(ph *phaseState, now time.Time) []string {
	r := rate(ph.done, ph.start, now)
	line := fmt.Sprintf("%-12s %s", ph.name, bar(ph.done, ph.total, r))
	if ph.total > ph.done && r > 0 {
		left := time.Duration(float64(ph.total-ph.done) / r * float64(time.Second))
		line += "  ETA " + left.Round(time.Second).String()
	}
	out := []string{line}
	names := make([]string, 0, len(ph.types))
	for n := range ph.types {
		names = append(names, n)
	}
	// The unfinished with progress first, then those not started, then the
	// finished; by name within each.
	rank := func(t *typeState) int {
		switch {
		case t.done > 0 && (t.total < 0 || t.done < t.total):
			return 0
		case t.done == 0:
			return 1
		}
		return 2
	}
	sort.Slice(names, func(i, j int) bool {
		ri, rj := rank(ph.types[names[i]]), rank(ph.types[names[j]])
		if ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	finished := 0
	for i, n := range names {
		t := ph.types[n]
		if rank(t) == 2 {
			finished++
		}
		if i < maxTypeLines {
			out = append(out, fmt.Sprintf("  %-22s %s", n, bar(t.done, t.total, t.rate(now))))
		}
	}
	if hidden := len(names) - maxTypeLines; hidden > 0 {
		out = append(out, fmt.Sprintf("  … %d more types (%d of all %d finished)", hidden, finished, len(names)))
	}
	return out
}

// bar renders done of total (a bar only when total is known) and a rate.
func bar(done, total int64, r float64) string {
	var s string
	if total > 0 {
		filled := int(min(done, total) * barWidth / total)
		s = fmt.Sprintf("[%s%s] %3d%% %8d/%-8d", strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled),
			min(done, total)*100/total, done, total)
	} else {
		s = fmt.Sprintf("%-31s %8d", "", done)
	}
	if r > 0 {
		s += "  " + humanRate(r)
	}
	return s
}

// humanRate formats a rate per second: 950/s, 12.3k/s, 1.2M/s.
func humanRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM/s", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk/s", r/1e3)
	}
	return fmt.Sprintf("%.0f/s", r)
}

// progressLog reports target.Progress events as structured log lines, for
// when stderr is not a terminal: one line when a phase ends, and one at
// most every interval while a long phase runs. It is safe for concurrent
// use.
type progressLog struct {
	log    *slog.Logger
	every  time.Duration
	now    func() time.Time
	mu     sync.Mutex
	phases map[string]*phaseState
	logged map[string]time.Time
}

var _ target.Progress = (*progressLog)(nil)

func newProgressLog(log *slog.Logger) *progressLog {
	return &progressLog{log: log, every: time.Minute, now: time.Now,
		phases: map[string]*phaseState{}, logged: map[string]time.Time{}}
}

// Start begins a phase.
func (p *progressLog) Start(phase string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.phases[phase], p.logged[phase] = newPhase(phase, total, now), now
}

// Add records progress, logging it when the phase was last logged an
// interval ago.
func (p *progressLog) Add(phase, typ string, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ph := p.phases[phase]
	if ph == nil {
		return
	}
	now := p.now()
	ph.add(typ, n, now)
	if now.Sub(p.logged[phase]) >= p.every {
		p.logged[phase] = now
		p.log.Info("pull progress", "phase", phase, "done", ph.done, "total", ph.total,
			"per_second", int64(rate(ph.done, ph.start, now)))
	}
}

// Done logs the phase's totals.
func (p *progressLog) Done(phase string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ph := p.phases[phase]
	if ph == nil {
		return
	}
	delete(p.phases, phase)
	now := p.now()
	p.log.Info("pull phase done", "phase", phase, "done", ph.done, "elapsed", now.Sub(ph.start).Round(time.Millisecond).String(),
		"per_second", int64(rate(ph.done, ph.start, now)))
}
