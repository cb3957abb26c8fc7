package main

import (
	"context"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/cutover"
	"github.com/dtm-project/dtm/reconcile"
	"github.com/dtm-project/dtm/target"
)

// digestReconciler is the cutover's reconcile step as a target supplier
// runs it for real: digests compared over the source's HTTP API
// (target.Reconcile), not by opening the source's database.
func digestReconciler(client *target.Client, st dtm.Journal, state dtm.TargetState, clock dtm.Clock, treeFile string) cutover.Reconciler {
	return cutover.ReconcilerFunc(func(ctx context.Context, practice string, asOf time.Time) (dtm.ReconcileSummary, error) {
		start := clock.Now()
		rep, err := target.Reconcile(ctx, client, st, practice, target.ReconcileOptions{At: asOf, State: state, Clock: clock, TreeFile: treeFile})
		if err != nil {
			return dtm.ReconcileSummary{}, err
		}
		return reconcileSummary(rep, start, clock.Now().Sub(start)), nil
	})
}

// reconcileSummary condenses a reconcile report into what the cutover
// records.
func reconcileSummary(rep target.ReconcileReport, at time.Time, took time.Duration) dtm.ReconcileSummary {
	return dtm.ReconcileSummary{
		Practice: rep.Practice, Method: "digest", At: at, Duration: took, SourceAsOf: rep.TransactionTime,
		SourceTotal: rep.SourceDigest.Total, TargetTotal: rep.TargetDigest.Total,
		Missing: int64(rep.Summary[reconcile.Missing]), Extra: int64(rep.Summary[reconcile.Extra]),
		Different: int64(rep.Summary[reconcile.Different]), Quarantined: int64(rep.Summary[reconcile.Quarantined]),
		SourceRoot: rep.SourceDigest.Root, TargetRoot: rep.TargetDigest.Root,
		Match: rep.Result != target.ReconcileMismatch,
	}
}
