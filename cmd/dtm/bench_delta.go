package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/synth"
)

// deltaBatch is how many updates the delta stage applies per commit.
const deltaBatch = 5000

// deltaLanguages are the values the delta stage gives Resource.language,
// one per --changes count, so that no two counts write the same content.
var deltaLanguages = []string{"en-GB", "cy-GB", "en-US", "en", "cy", "ga", "gd"}

// deltaExports measures, for each --changes count N, an export of exactly N
// changes: updates of existing resources spread evenly over the practice
// (every k-th generated resource, with Resource.language set), written
// straight to the store in batches of deltaBatch, then a Group export with
// _since the snapshot before them. The largest count goes first, so that
// the updates still waiting for the smaller counts hold little memory
// while it is measured. It fails unless the export holds exactly the
// changes written.
func (b *benchRun) deltaExports(ctx context.Context) error {
	counts := slices.Clone(b.o.changes)
	slices.Sort(counts)
	slices.Reverse(counts)
	picks, err := b.pickUpdates(ctx, counts)
	if err != nil {
		return err
	}
	for i, n := range counts {
		writes := picks[i]
		picks[i] = nil
		head, err := b.src.Head(ctx)
		if err != nil {
			return err
		}
		applied := 0
		for w := range slices.Chunk(writes, deltaBatch) {
			c, err := b.src.Apply(ctx, demoPractice, w)
			if err != nil {
				return fmt.Errorf("delta updates: %w", err)
			}
			applied += c.Applied
		}
		writes = nil
		var ready time.Duration
		var got int
		elapsed, peak, err := measure(func() error {
			m, r, err := b.export(ctx, fhir.FormatInstant(head.Time))
			ready = r
			if err != nil {
				return err
			}
			got, err = download(ctx, m, false)
			return err
		})
		if err != nil {
			return fmt.Errorf("delta export: %w", err)
		}
		if got != applied {
			return fmt.Errorf("delta export of %d changes: %d resources exported, want %d", n, got, applied)
		}
		note := fmt.Sprintf("%d updates over %d patients (%d resources)", applied, b.patients, b.generated)
		if applied < n {
			note += fmt.Sprintf("; the practice has fewer than %d resources to update", n)
		}
		budget, limit := "≤ 1,000 (1,000 changes, 5M resources)", 1000.0
		if n != 1000 {
			budget, limit = sizingBudget+"; ≤ 1,000 is for 1,000 changes", 0
		}
		b.add(fmt.Sprintf("delta export of %d changes, manifest ready", n), ready.Seconds()*1000, "ms", budget, false, limit, peak, note)
		b.add(fmt.Sprintf("delta export of %d changes, to last byte", n), elapsed.Seconds()*1000, "ms", sizingBudget, false, 0, peak,
			fmt.Sprintf("%.0f changes/s", float64(got)/elapsed.Seconds()))
	}
	return nil
}

// pickUpdates generates the practice again and returns, for each count,
// that many updates of resources spread evenly over it (count i takes
// every k-th resource from offset i, with deltaLanguages[i]).
func (b *benchRun) pickUpdates(ctx context.Context, counts []int) ([][]dtm.Write, error) {
	picks := make([][]dtm.Write, len(counts))
	step := make([]int, len(counts))
	for i, n := range counts {
		step[i] = max(1, b.generated/n)
		picks[i] = make([]dtm.Write, 0, min(n, max(b.generated, 1)))
	}
	j := 0
	err := synth.Generate(ctx, b.synthOptions(), func(_ string, data []byte) error {
		defer func() { j++ }()
		for i, n := range counts {
			if len(picks[i]) >= n || j%step[i] != i%step[i] {
				continue
			}
			lang := deltaLanguages[i%len(deltaLanguages)]
			body := make([]byte, 0, len(data)+24)
			body = append(append(append(body, `{"language":"`...), lang...), `",`...)
			body = append(body, data[1:]...)
			w, err := source.ResourceWrite(body)
			if err != nil {
				return fmt.Errorf("generated resource: %w", err)
			}
			picks[i] = append(picks[i], w)
		}
		return nil
	})
	return picks, err
}
