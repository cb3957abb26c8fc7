package cutover

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dtm-project/dtm"
)

// Span is one step of a run on its timeline.
type Span struct {
	Step     string        `json:"step"`
	Status   string        `json:"status"`
	By       string        `json:"by,omitempty"`
	Start    time.Time     `json:"start,omitzero"`
	End      time.Time     `json:"end,omitzero"`
	Duration time.Duration `json:"duration"`
	Attempts int           `json:"attempts"`
	Summary  string        `json:"summary,omitempty"`
}

// Timeline returns the run's steps in order with their timings and a
// one-line summary of each step's figures.
func Timeline(run dtm.CutoverRun) []Span {
	var out []Span
	for _, s := range run.Steps {
		out = append(out, Span{Step: s.Name, Status: s.Status, By: s.By, Start: s.StartedAt, End: s.FinishedAt,
			Duration: s.Duration(), Attempts: s.Attempts, Summary: stepSummary(s)})
	}
	return out
}

// Elapsed returns the time from the run's start to its end (or its last
// update, while unfinished).
func Elapsed(run dtm.CutoverRun) time.Duration {
	end := run.FinishedAt
	if end.IsZero() {
		end = run.UpdatedAt
	}
	return max(end.Sub(run.StartedAt), 0)
}

// summaryKeys are the facts shown, in this order, on a step's line.
var summaryKeys = []string{"skip", "action", "received", "applied", "quarantined", "warnings", "error_rate",
	"counts_reconcile", "match", "source_total", "target_total", "missing", "extra", "different",
	"automatic", "failed", "decision", "by", "reason", "live_at", "ahead_of_go_live", "frozen"}

func stepSummary(s dtm.RunbookStep) string {
	if s.Error != "" {
		return "error: " + s.Error
	}
	var parts []string
	for _, k := range summaryKeys {
		if v, ok := s.Facts[k]; ok && v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// WriteTimeline writes the run's timeline for people: one line per step
// with who ran it, when (Europe/London), how long it took and its figures,
// then the run's event log.
func WriteTimeline(w io.Writer, run dtm.CutoverRun, events []dtm.RunEvent) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s (%s) of plan %s: %s\n", run.ID, run.Mode, run.Plan, run.State)
	fmt.Fprintf(&b, "Started by %s at %s; elapsed %s\n\n", run.StartedBy, Local(run.StartedAt), dur(Elapsed(run)))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATUS\tBY\tSTARTED\tDURATION\tATTEMPTS\tFIGURES")
	for _, s := range Timeline(run) {
		d := "-"
		if !s.End.IsZero() {
			d = dur(s.Duration)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Step, s.Status, or(s.By, "-"), Local(s.Start), d, s.Attempts, s.Summary)
	}
	tw.Flush()
	if run.Decision != nil {
		d := run.Decision
		fmt.Fprintf(&b, "\nDecision: %s by %s (%s) at %s: %s\n", d.Decision, d.By, or(d.Role, "-"), Local(d.At), or(d.Reason, "-"))
	}
	if len(events) > 0 {
		b.WriteString("\nEvents:\n")
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, e := range events {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, Local(e.At), or(e.Step, "run"), e.Event, e.By, e.Detail)
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// sortedFacts returns a step's facts as figures sorted by name.
func sortedFacts(s dtm.RunbookStep) []Figure {
	var out []Figure
	for k, v := range s.Facts {
		out = append(out, Figure{k, v})
	}
	slices.SortFunc(out, func(a, b Figure) int { return strings.Compare(a.Name, b.Name) })
	return out
}
