package target

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

// PullIntegrity is what one pull did, for the integrity report: its counts
// (received = applied + skipped + quarantined, invariant 5), its
// quarantine by rule and its timings.
type PullIntegrity struct {
	ID              string           `json:"id"`
	Status          string           `json:"status"`
	Since           time.Time        `json:"since,omitzero"` // zero for an initial extract
	TransactionTime time.Time        `json:"transactionTime"`
	StartedAt       time.Time        `json:"startedAt"`
	AvailableAt     time.Time        `json:"availableAt,omitzero"`
	FinishedAt      time.Time        `json:"finishedAt,omitzero"`
	Duration        Milliseconds     `json:"durationMs"`       // started to finished
	ConsumeLatency  Milliseconds     `json:"consumeLatencyMs"` // export ready to applied (T1)
	Counts          dtm.PullCounts   `json:"counts"`
	Quarantine      map[string]int64 `json:"quarantineByRule,omitempty"`
}

// Integrity is the integrity report of a practice at the target (A3): the
// initial extract (the first complete pull, with no _since), the latest
// pull, totals over every complete pull, and the reconciliation that proves
// what the target holds.
type Integrity struct {
	Practice       string           `json:"practice"`
	Source         string           `json:"source"`
	GeneratedAt    time.Time        `json:"generatedAt"`
	InitialExtract *PullIntegrity   `json:"initialExtract,omitempty"`
	LatestPull     *PullIntegrity   `json:"latestPull,omitempty"`
	CompletePulls  int              `json:"completePulls"`
	Totals         dtm.PullCounts   `json:"totals"`
	Reconciliation *ReconcileReport `json:"reconciliation,omitempty"`
}

// IntegrityReport builds the integrity report of the practice's pulls from
// source, with rec (which may be nil) as its reconciliation.
func IntegrityReport(ctx context.Context, state dtm.TargetState, source, practice string, now time.Time, rec *ReconcileReport) (Integrity, error) {
	in := Integrity{Practice: practice, Source: source, GeneratedAt: now, Reconciliation: rec}
	pulls, err := state.Pulls(ctx, practice, 1_000_000)
	if err != nil {
		return in, fmt.Errorf("integrity report: %w", err)
	}
	for i := len(pulls) - 1; i >= 0; i-- { // oldest first
		p := pulls[i]
		if p.Source != source || p.Status != dtm.PullComplete {
			continue
		}
		in.CompletePulls++
		addCounts(&in.Totals, p.Counts)
		in.Totals.Attachments += p.Counts.Attachments
		in.Totals.AttachmentProblems += p.Counts.AttachmentProblems
		in.Totals.Files += p.Counts.Files
		in.Totals.Bytes += p.Counts.Bytes
		s, err := summarise(ctx, state, p)
		if err != nil {
			return in, err
		}
		if in.InitialExtract == nil && p.Since.IsZero() {
			in.InitialExtract = &s
		}
		in.LatestPull = &s
	}
	return in, nil
}

// summarise returns p's summary with its quarantine counted by rule.
func summarise(ctx context.Context, state dtm.TargetState, p dtm.PullRecord) (PullIntegrity, error) {
	s := PullIntegrity{ID: p.ID, Status: p.Status, Since: p.Since, TransactionTime: p.TransactionTime,
		StartedAt: p.StartedAt, AvailableAt: p.AvailableAt, FinishedAt: p.FinishedAt,
		Duration: Milliseconds(max(p.FinishedAt.Sub(p.StartedAt), 0)), ConsumeLatency: Milliseconds(p.ConsumeLatency()),
		Counts: p.Counts, Quarantine: map[string]int64{}}
	err := state.Quarantined(ctx, p.Practice, p.ID, func(q dtm.QuarantineRecord) error {
		reason := quarantineReason(q)
		if r, rules, ok := strings.Cut(reason, ": "); ok {
			for _, rule := range strings.Split(rules, ", ") {
				s.Quarantine[r+": "+rule]++
			}
		} else {
			s.Quarantine[reason]++
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("integrity report: %w", err)
	}
	return s, nil
}
