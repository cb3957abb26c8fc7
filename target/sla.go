package target

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dtm-project/dtm"
)

// complete records the applied export: the target store's watermark, then
// the pull's completion together with the checkpoint (one transaction),
// and removes the downloaded files.
func (p *Puller) complete(ctx context.Context, rec *dtm.PullRecord) error {
	if err := p.sumCounts(ctx, rec); err != nil {
		return err
	}
	c := rec.Counts
	if c.Received != c.Applied+c.Skipped+c.Quarantined {
		return dtm.Errorf(dtm.EInternal, "counts do not reconcile: received %d, applied %d, skipped %d, quarantined %d",
			c.Received, c.Applied, c.Skipped, c.Quarantined)
	}
	if err := p.cfg.Store.SetWatermark(ctx, rec.Practice, rec.TransactionTime); err != nil {
		return fmt.Errorf("set watermark: %w", err)
	}
	rec.Status, rec.FinishedAt, rec.Error = dtm.PullComplete, p.cfg.Clock.Now(), ""
	if err := p.cfg.State.CompletePull(ctx, *rec); err != nil {
		return fmt.Errorf("complete pull: %w", err)
	}
	if err := os.RemoveAll(p.workDir(rec.ID)); err != nil {
		p.log.Warn("removing work files", "pull", rec.ID, "err", err)
	}
	p.log.Info("pull complete", "pull", rec.ID, "practice", rec.Practice,
		"transaction_time", rec.TransactionTime, "received", c.Received, "applied", c.Applied,
		"skipped", c.Skipped, "deleted", c.Deleted, "quarantined", c.Quarantined, "warnings", c.Warnings,
		"source_errors", c.SourceErrors, "attachments", c.Attachments, "attachment_problems", c.AttachmentProblems,
		"consume_latency", rec.ConsumeLatency())
	return nil
}

// SLA is where a practice stands against the target's service levels.
type SLA struct {
	Practice string
	// LastPull is the latest complete pull (zero when there is none).
	LastPull dtm.PullRecord
	// ConsumeLatency is how long the latest complete pull took from its
	// export being available to everything applied; T1 requires it to be
	// at most dtm.ConsumeWithin (6 h).
	ConsumeLatency time.Duration
	T1OK           bool
	// SinceLastSuccess is the time since the latest complete pull
	// finished; T2 requires it to stay within dtm.RetrieveWithin (7 days).
	SinceLastSuccess time.Duration
	T2OK             bool
	// DataAsOf is the transactionTime the target holds the practice up to
	// (T3), and SourceLastUpdated what the source reported at that pull.
	DataAsOf          time.Time
	SourceLastUpdated time.Time
	// Pending is an unfinished pull, if any.
	Pending *dtm.PullRecord
}

// Report computes the practice's SLA from the pull records at now. A
// practice never pulled fails T2.
func Report(ctx context.Context, state dtm.TargetState, practice string, now time.Time) (SLA, error) {
	pulls, err := state.Pulls(ctx, practice, 100)
	if err != nil {
		return SLA{}, fmt.Errorf("sla report: %w", err)
	}
	s := SLA{Practice: practice}
	for i := range pulls {
		pr := pulls[i]
		switch pr.Status {
		case dtm.PullComplete:
			if s.LastPull.ID == "" {
				s.LastPull = pr
			}
		case dtm.PullKickedOff, dtm.PullDownloading, dtm.PullApplying:
			if s.Pending == nil && s.LastPull.ID == "" {
				s.Pending = &pr
			}
		}
	}
	if s.LastPull.ID == "" {
		return s, nil
	}
	s.ConsumeLatency = s.LastPull.ConsumeLatency()
	s.T1OK = s.ConsumeLatency <= dtm.ConsumeWithin
	s.SinceLastSuccess = max(now.Sub(s.LastPull.FinishedAt), 0)
	s.T2OK = s.SinceLastSuccess <= dtm.RetrieveWithin
	s.DataAsOf, s.SourceLastUpdated = s.LastPull.TransactionTime, s.LastPull.SourceLastUpdated
	return s, nil
}
