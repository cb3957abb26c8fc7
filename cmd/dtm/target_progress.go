package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// progressBars draws target.Progress events on a terminal: one line per
// phase, redrawn in place at most every 200 ms, with the overall count,
// percentage and rate and the busiest resource types. It is safe for
// concurrent use.
type progressBars struct {
	w     io.Writer
	mu    sync.Mutex
	phase string
	total int64
	done  int64
	types map[string]int64
	start time.Time
	drawn time.Time
}

func newProgressBars(w io.Writer) *progressBars { return &progressBars{w: w} }

// Start begins a phase.
func (p *progressBars) Start(phase string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.total, p.done, p.types, p.start = phase, total, 0, map[string]int64{}, time.Now()
	p.draw(true)
}

// Add records progress.
func (p *progressBars) Add(phase, typ string, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if phase != p.phase {
		return
	}
	p.done += n
	p.types[typ] += n
	p.draw(false)
}

// Done ends a phase, leaving its last line on screen.
func (p *progressBars) Done(phase string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if phase != p.phase {
		return
	}
	p.draw(true)
	fmt.Fprintln(p.w)
	p.phase = ""
}

const barWidth = 24

// draw redraws the line, unless it was drawn less than 200 ms ago.
func (p *progressBars) draw(force bool) {
	now := time.Now()
	if !force && now.Sub(p.drawn) < 200*time.Millisecond {
		return
	}
	p.drawn = now
	var b strings.Builder
	fmt.Fprintf(&b, "\r%-11s ", p.phase)
	if p.total > 0 {
		filled := int(min(p.done, p.total) * barWidth / p.total)
		fmt.Fprintf(&b, "[%s%s] %3d%% %d/%d", strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled),
			p.done*100/p.total, p.done, p.total)
	} else {
		fmt.Fprintf(&b, "%d", p.done)
	}
	if s := now.Sub(p.start).Seconds(); s > 0 {
		fmt.Fprintf(&b, " %.0f/s", float64(p.done)/s)
	}
	b.WriteString(p.busiest(3))
	b.WriteString("\x1b[K") // clear the rest of the line
	io.WriteString(p.w, b.String())
}

// busiest lists the n types with most progress.
func (p *progressBars) busiest(n int) string {
	types := make([]string, 0, len(p.types))
	for t := range p.types {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return p.types[types[i]] > p.types[types[j]] })
	var b strings.Builder
	for i, t := range types {
		if i == n {
			break
		}
		fmt.Fprintf(&b, " %s %d", t, p.types[t])
	}
	return b.String()
}
