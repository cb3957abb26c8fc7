package cutover

import (
	"context"
	"fmt"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/reconcile"
)

// Reconciler compares the practice at the source, at the snapshot whose
// transactionTime is asOf (the final pull's), with the target store, and
// accounts for the target's quarantine. It must be read-only, so that a
// resumed run can call it again.
//
// It is the seam for the digest reconciliation of issue 6 (dtm target
// reconcile): until that lands, JournalReconciler compares two stores
// opened in one process.
type Reconciler interface {
	Reconcile(ctx context.Context, practice string, asOf time.Time) (dtm.ReconcileSummary, error)
}

// ReconcilerFunc adapts a function to Reconciler.
type ReconcilerFunc func(ctx context.Context, practice string, asOf time.Time) (dtm.ReconcileSummary, error)

// Reconcile calls f.
func (f ReconcilerFunc) Reconcile(ctx context.Context, practice string, asOf time.Time) (dtm.ReconcileSummary, error) {
	return f(ctx, practice, asOf)
}

// JournalReconciler reconciles two journals opened in one process with
// package reconcile: the digest of the practice at the source snapshot and
// at the target's head (both in Group scope), compared root first and,
// when the roots differ, bucket by bucket down to the resources. Missing or
// different resources the target quarantined are accounted for as such.
// It suits test environments and single-machine demos; the digest protocol
// of issue 6 (the source serving its digest) serves remote sources.
type JournalReconciler struct {
	Source dtm.Journal
	Target dtm.Journal
	State  dtm.TargetState // quarantine records; nil accounts for none
	Clock  dtm.Clock
}

// Reconcile implements Reconciler.
func (j JournalReconciler) Reconcile(ctx context.Context, practice string, asOf time.Time) (dtm.ReconcileSummary, error) {
	start := j.Clock.Now()
	snap, err := j.Source.SnapshotAt(ctx, asOf)
	if err != nil {
		return dtm.ReconcileSummary{}, fmt.Errorf("reconcile: source snapshot: %w", err)
	}
	src, _, err := reconcile.Compute(ctx, j.Source, practice, snap, nil)
	if err != nil {
		return dtm.ReconcileSummary{}, fmt.Errorf("reconcile: source: %w", err)
	}
	thead, err := j.Target.Head(ctx)
	if err != nil {
		return dtm.ReconcileSummary{}, fmt.Errorf("reconcile: target head: %w", err)
	}
	tgt, _, err := reconcile.Compute(ctx, j.Target, practice, thead, nil)
	if err != nil {
		return dtm.ReconcileSummary{}, fmt.Errorf("reconcile: target: %w", err)
	}
	s := dtm.ReconcileSummary{Practice: practice, Method: "digest", At: start, SourceAsOf: snap.Time,
		SourceTotal: src.Total, TargetTotal: tgt.Total, SourceRoot: src.Root, TargetRoot: tgt.Root}
	if src.Root != tgt.Root {
		if err := j.drill(ctx, practice, snap.Seq, thead.Seq, src, tgt, &s); err != nil {
			return dtm.ReconcileSummary{}, err
		}
	}
	s.Match = s.Missing == 0 && s.Extra == 0 && s.Different == 0
	s.Duration = j.Clock.Now().Sub(start)
	return s, nil
}

// drill compares the buckets whose digests differ, resource by resource,
// and counts the differences into s.
func (j JournalReconciler) drill(ctx context.Context, practice string, srcSeq, tgtSeq int64, src, tgt dtm.Digest, s *dtm.ReconcileSummary) error {
	quarantined := map[string]bool{}
	if j.State != nil {
		err := j.State.Quarantined(ctx, practice, "", func(q dtm.QuarantineRecord) error {
			if q.Type != "" && q.ID != "" {
				quarantined[q.Type+"/"+q.ID] = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reconcile: quarantine: %w", err)
		}
	}
	srcSide, tgtSide := reconcile.Side{}, reconcile.Side{}
	for _, b := range reconcile.DifferentBuckets(src.Buckets, tgt.Buckets) {
		se, err := reconcile.Bucket(ctx, j.Source, practice, b, srcSeq)
		if err != nil {
			return fmt.Errorf("reconcile: source: %w", err)
		}
		te, err := reconcile.Bucket(ctx, j.Target, practice, b, tgtSeq)
		if err != nil {
			return fmt.Errorf("reconcile: target: %w", err)
		}
		srcSide[b], tgtSide[b] = se, te
	}
	for _, d := range reconcile.Compare(srcSide, tgtSide) {
		switch {
		case d.Kind != reconcile.Extra && quarantined[d.Resource]:
			s.Quarantined++
		case d.Kind == reconcile.Missing:
			s.Missing++
		case d.Kind == reconcile.Extra:
			s.Extra++
		default:
			s.Different++
		}
	}
	return nil
}
