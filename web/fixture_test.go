package web

import (
	"time"

	"github.com/dtm-project/dtm"
)

// fixedNow is Tuesday 13 October 2026, 10:30 BST.
var fixedNow = time.Date(2026, 10, 13, 9, 30, 0, 0, time.UTC)

// testDashboard returns a target dashboard with every panel filled for
// A81001 and an empty practice B82002; pulls is the first pull's
// Received count, so that tests can tell updates apart.
func testDashboard(now time.Time, pulls int64) Dashboard {
	var hist []Point
	for i := 48; i >= 0; i-- {
		hist = append(hist, Point{At: now.Add(-time.Duration(i) * time.Hour), Value: float64(i%8) + 0.5})
	}
	var days []DayCount
	for i := 13; i >= 0; i-- {
		days = append(days, DayCount{Day: now.AddDate(0, 0, -i), Count: int64(100 * (i + 1))})
	}
	windowStart := time.Date(2026, 10, 23, 16, 0, 0, 0, time.UTC) // Fri 23 Oct 17:00 BST
	return Dashboard{
		Title: "dtm target", Role: RoleTarget, GeneratedAt: now,
		Practices: []PracticeView{
			{
				ODS: "A81001", Name: "Riverside Surgery", Resources: 123456,
				Freshness: FreshnessView{LastUpdated: now.Add(-7 * time.Hour), Watermark: now.Add(-7*time.Hour - 30*time.Minute),
					Lag: 7 * time.Hour, State: dtm.FreshWarning, History: hist},
				Changes: &ChangesView{Days: days},
				Pulls: &PullsView{
					LastSuccess: now.Add(-36 * time.Hour), LastConsume: 95 * time.Minute, Last24h: 1,
					Recent: []PullView{
						{ID: "pull-2", Status: dtm.PullComplete, StartedAt: now.Add(-38 * time.Hour),
							AvailableAt: now.Add(-37 * time.Hour), FinishedAt: now.Add(-36 * time.Hour),
							Consume: 95 * time.Minute, Received: pulls, Quarantined: 3},
						{ID: "pull-1", Status: dtm.PullFailed, StartedAt: now.Add(-50 * time.Hour), Error: "source unavailable"},
					},
				},
				Findings: &FindingsView{Quarantined: 3, Warnings: 17, Rules: []RuleCount{
					{Rule: "nhs-number-check-digit", Reason: dtm.QuarantineInvalid, Count: 2},
					{Rule: "attachment-hash", Reason: dtm.QuarantineAttachment, Count: 1},
				}},
				Issues: &IssuesView{Closed: 4, Open: []IssueView{
					{ID: "7", Status: dtm.IssueOpen, Severity: "error", Category: dtm.IssueValidation,
						Rule: "nhs-number-check-digit", Title: "NHS numbers fail the check digit", Resources: 2,
						RaisedAt: now.Add(-50 * time.Hour), Due: now.Add(-26 * time.Hour), Overdue: true, WaitingOn: "source"},
				}},
				Reconcile: &ReconcileView{At: now.Add(-2 * time.Hour), SourceAsOf: now.Add(-3 * time.Hour), Method: "digest",
					SourceTotal: 123459, TargetTotal: 123456, Quarantined: 3, Match: true},
				Cutover: &CutoverView{Plan: "A81001-2026-10-23", Status: dtm.PlanActive, WindowStart: windowStart,
					GoLive:            time.Date(2026, 10, 26, 8, 0, 0, 0, time.UTC),
					ReadinessDeadline: windowStart.AddDate(0, 0, -14), ReadinessAt: windowStart.AddDate(0, 0, -15),
					Run: &RunView{ID: "run-1", Mode: dtm.RunRehearsal, State: dtm.RunInProgress, Steps: []StepView{
						{Name: "freeze", Status: dtm.StepSkipped},
						{Name: "final-pull", Status: dtm.StepDone, Duration: 4 * time.Minute},
						{Name: "reconcile", Status: dtm.StepRunning},
						{Name: "go-no-go", Status: dtm.StepPending},
					}}},
			},
			{ODS: "B82002", Freshness: FreshnessView{State: dtm.FreshBreach}},
		},
	}
}
