package cutover

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Check results.
const (
	Pass = "pass"
	Warn = "warn"
	Fail = "fail"
)

// NoEvidence is the figure shown where nothing was recorded: the report
// says so rather than guessing.
const NoEvidence = "no evidence recorded"

// Options tune the readiness checks. The zero value gives the defaults.
type Options struct {
	// Days is the assessed period (28 when 0).
	Days int
	// MaxErrorRate is the share of received resources that may be
	// quarantined before the validation check fails (0.01 when 0); any
	// quarantine at all is a warning.
	MaxErrorRate float64
}

func (o Options) days() int {
	if o.Days <= 0 {
		return 28
	}
	return o.Days
}

func (o Options) maxErrorRate() float64 {
	if o.MaxErrorRate <= 0 {
		return 0.01
	}
	return o.MaxErrorRate
}

// Figure is one piece of evidence: a name and its value, as shown.
type Figure struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Check is one readiness check: what it tests, against which requirements,
// its result, the evidence, and whether a failure blocks the confirmation.
type Check struct {
	ID           string   `json:"id"`
	Title        string   `json:"title"`
	Requirements []string `json:"requirements"`
	Status       string   `json:"status"` // Pass, Warn or Fail
	// Blocking is true when the check failed and the failure blocks the
	// readiness confirmation (T6).
	Blocking bool     `json:"blocking"`
	Summary  string   `json:"summary"`
	Evidence []Figure `json:"evidence"`
}

// Report is a readiness assessment (T6): every check with its evidence,
// and whether the practice is ready (no blocking failure).
type Report struct {
	Plan              string     `json:"plan"`
	Practice          string     `json:"practice"`
	CutoverDate       string     `json:"cutoverDate"`
	WindowStart       time.Time  `json:"windowStart"`
	GoLive            time.Time  `json:"goLive"`
	WindowHours       float64    `json:"windowHours"`
	ReadinessDeadline time.Time  `json:"readinessDeadline"`
	AssessedAt        time.Time  `json:"assessedAt"`
	PeriodDays        int        `json:"periodDays"`
	Ready             bool       `json:"ready"`
	Checks            []Check    `json:"checks"`
	Prediction        Prediction `json:"prediction"`
}

// Blocking returns the checks whose failure blocks confirmation.
func (r Report) Blocking() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Blocking {
			out = append(out, c)
		}
	}
	return out
}

// Assess evaluates every readiness check on f.
func Assess(f Facts, o Options) Report {
	pred := Predict(f)
	r := Report{
		Plan: f.Plan.ID, Practice: f.Plan.Practice, CutoverDate: f.Plan.Date,
		WindowStart: f.Plan.WindowStart, GoLive: f.Plan.GoLive, WindowHours: f.Plan.Window().Hours(),
		ReadinessDeadline: f.Plan.ReadinessDeadline, AssessedAt: f.Now, PeriodDays: o.days(), Prediction: pred,
	}
	r.Checks = []Check{
		checkDeadline(f), checkAuth(f), checkFreshness(f), checkWeekly(f), checkConsume(f),
		checkValidation(f, o), checkIssues(f), checkReconcile(f), checkPrediction(pred),
	}
	r.Ready = len(r.Blocking()) == 0
	return r
}

// Readiness gathers the facts of the practice's active plan and assesses
// them. It returns an ENotFound error when there is no plan.
func (s *Service) Readiness(ctx context.Context, practice string) (Report, error) {
	plan, err := s.ActivePlan(ctx, practice)
	if err != nil {
		return Report{}, err
	}
	f, err := s.Gather(ctx, plan)
	if err != nil {
		return Report{}, err
	}
	return Assess(f, s.Options), nil
}

// JSON returns the report as indented JSON.
func (r Report) JSON() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil { // unreachable: plain values only
		panic(fmt.Sprintf("readiness report: %v", err))
	}
	return b
}

// WriteText writes the report for people.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Readiness of practice %s for the cutover of %s (plan %s)\n", r.Practice, r.CutoverDate, r.Plan)
	fmt.Fprintf(&b, "Window: %s → %s (%.0f h). Confirm (T6) by %s.\n", Local(r.WindowStart), Local(r.GoLive),
		r.WindowHours, Local(r.ReadinessDeadline))
	fmt.Fprintf(&b, "Assessed at %s over the last %d days.\n\n", Local(r.AssessedAt), r.PeriodDays)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, c := range r.Checks {
		mark := strings.ToUpper(c.Status)
		if c.Blocking {
			mark += " (blocks)"
		}
		fmt.Fprintf(tw, "%s\t%s\t[%s]\t%s\n", mark, c.Title, strings.Join(c.Requirements, ", "), c.Summary)
		for _, e := range c.Evidence {
			fmt.Fprintf(tw, "\t  %s\t\t%s\n", e.Name, e.Value)
		}
	}
	tw.Flush()
	if r.Ready {
		b.WriteString("\nREADY: no check blocks the readiness confirmation.\n")
	} else {
		var ids []string
		for _, c := range r.Blocking() {
			ids = append(ids, c.ID)
		}
		fmt.Fprintf(&b, "\nNOT READY: blocked by %s.\n", strings.Join(ids, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// dur formats a duration for evidence: "5h03m", "41s", "850ms".
func dur(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d >= time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}
