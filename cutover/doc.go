// Package cutover drives a practice's weekend cutover (requirements T6 and
// A4 of DESIGN.md): the migration plan with its Europe/London window,
// the readiness assessment from recorded facts and the signed
// confirmations, the runbook as a resumable state machine (freeze, final
// delta pull, validate, load, reconcile, go/no-go, go-live or rollback),
// and the evidence report for the assurance team.
//
// The pieces, each in its own file:
//
//   - window.go, plan.go: the window (Friday 17:00 to Monday 08:00 London,
//     62, 63 or 64 hours) and plans, refusing impossible ones.
//   - facts.go, readiness.go, checks.go, predict.go, confirm.go: readiness
//     from pull records, checkpoints, reconciliations, data issues and
//     rehearsal timings; confirmations refused after the T6 deadline or
//     while a blocking check fails.
//   - runbook.go, steps.go, rules.go, freeze.go, reconcile.go, phases.go,
//     timeline.go: the runbook. Every step is persisted before and after it
//     runs, so a crash resumes where it stopped; every step is idempotent.
//   - evidence*.go, svg.go: the self-contained HTML evidence report.
//
// Nothing here logs or reports patient data: only counts, instants,
// durations, digests and the names of people who signed or ran steps.
package cutover

import _ "time/tzdata" // Europe/London without a system zoneinfo
