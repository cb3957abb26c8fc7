package cutover

import (
	"sync"
	"time"

	"github.com/dtm-project/dtm"
)

// PhaseTimer times the phases of a pull ("download", "apply" — where
// validation and loading happen together — and "attachments"). It
// implements target.Progress: give it to target.Config.Progress, and the
// runbook records each phase's duration in its validate and load steps. It
// is safe for concurrent use.
type PhaseTimer struct {
	Clock dtm.Clock

	mu      sync.Mutex
	started map[string]time.Time
	took    map[string]time.Duration
	units   map[string]int64
}

// Start implements target.Progress.
func (p *PhaseTimer) Start(phase string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started == nil {
		p.started, p.took, p.units = map[string]time.Time{}, map[string]time.Duration{}, map[string]int64{}
	}
	p.started[phase] = p.Clock.Now()
}

// Add implements target.Progress.
func (p *PhaseTimer) Add(phase, typ string, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.units != nil {
		p.units[phase] += n
	}
}

// Done implements target.Progress.
func (p *PhaseTimer) Done(phase string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.started[phase]; ok {
		p.took[phase] += p.Clock.Now().Sub(t)
		delete(p.started, phase)
	}
}

// Reset forgets every phase.
func (p *PhaseTimer) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started, p.took, p.units = nil, nil, nil
}

// Took returns how long phase took in total and how many units it did;
// ok is false when it never finished.
func (p *PhaseTimer) Took(phase string) (d time.Duration, units int64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok = p.took[phase]
	return d, p.units[phase], ok
}
