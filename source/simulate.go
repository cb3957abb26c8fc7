package source

import (
	"context"
	"fmt"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/synth"
)

// Feed drives a practice activity simulator into the journal, the way a
// live source system would push its changes: a batch of writes per step,
// then the source watermark ("complete as of") for the end of the step.
type Feed struct {
	Store    dtm.Store
	Practice string
	Sim      *synth.Simulator
	// Watermark maps the simulator's time at the end of a step to the
	// watermark recorded; nil records the simulator's time itself (right
	// when the store runs on the simulator's virtual clock).
	Watermark func(virtual time.Time) time.Time
	// Advance, when set, is called with the simulator's time at the end of
	// each step before its changes are applied: a virtual clock shared with
	// the store moves there, so commit times follow simulated time.
	Advance func(virtual time.Time)
}

// FeedStats counts what a Feed applied.
type FeedStats struct {
	Steps   int
	Events  int
	Applied int
	Skipped int
}

// Run simulates from the simulator's Now() to `to` in steps of `step`. After
// each step is applied and its watermark recorded it calls pace (when not
// nil) with the simulator's time, which may sleep to run in real time or
// advance a virtual clock. It stops at the first error.
func (f *Feed) Run(ctx context.Context, to time.Time, step time.Duration, pace func(ctx context.Context, virtual time.Time) error) (FeedStats, error) {
	var st FeedStats
	for f.Sim.Now().Before(to) {
		end := f.Sim.Now().Add(step)
		if end.After(to) {
			end = to
		}
		var writes []dtm.Write
		err := f.Sim.Step(ctx, end, func(ev synth.Event) error {
			st.Events++
			if ev.Op == synth.OpDelete {
				writes = append(writes, dtm.Write{Type: ev.Type, ID: ev.ID, Op: dtm.OpDelete})
				return nil
			}
			w, err := ResourceWrite(ev.JSON)
			if err != nil {
				return fmt.Errorf("simulated %s: %w", ev.Type, err)
			}
			writes = append(writes, w)
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("simulate: %w", err)
		}
		if f.Advance != nil {
			f.Advance(f.Sim.Now())
		}
		if len(writes) > 0 {
			c, err := f.Store.Apply(ctx, f.Practice, writes)
			if err != nil {
				return st, fmt.Errorf("simulate: apply: %w", err)
			}
			st.Applied += c.Applied
			st.Skipped += c.Skipped
		}
		mark := f.Sim.Now()
		if f.Watermark != nil {
			mark = f.Watermark(mark)
		}
		if err := f.Store.SetWatermark(ctx, f.Practice, mark); err != nil {
			return st, fmt.Errorf("simulate: watermark: %w", err)
		}
		st.Steps++
		if pace != nil {
			if err := pace(ctx, f.Sim.Now()); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// LoadGenerated generates the synthetic practice opts describes straight
// into the practice's journal, in batches, without files.
func (in *Ingester) LoadGenerated(ctx context.Context, practice string, opts synth.Options) (Stats, error) {
	b := &batcher{journal: in.Journal, practice: practice, size: in.batchSize()}
	err := synth.Generate(ctx, opts, func(_ string, json []byte) error {
		w, err := ResourceWrite(append([]byte(nil), json...))
		if err != nil {
			return fmt.Errorf("generated resource: %w", err)
		}
		return b.add(ctx, w)
	})
	if err != nil {
		return b.stats, err
	}
	return b.stats, b.flush(ctx)
}
