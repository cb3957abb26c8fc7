package cutover

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/dtm-project/dtm"
)

// Requirement statuses in the evidence report.
const (
	Met            = "met"
	NotMet         = "not met"
	Partial        = "partial"
	NoEvidenceShow = "no evidence"
)

// Requirement is one row of the evidence report: a requirement of
// DESIGN.md (S1–S7, T1–T6, A1–A4), its status from the recorded facts,
// the figures that show it, and links into the report's appendix.
type Requirement struct {
	ID      string
	Text    string
	Status  string // Met, NotMet, Partial or NoEvidenceShow
	Figures []Figure
	Links   []Link
	Note    string // what the figures cannot show, said plainly
}

// Link points into the report's appendix.
type Link struct{ Href, Text string }

// requirement starts a row; it has no evidence until figures are added.
func requirement(id, text string, links ...Link) *Requirement {
	return &Requirement{ID: id, Text: text, Status: NoEvidenceShow, Links: links}
}

func (r *Requirement) fig(name, value string) { r.Figures = append(r.Figures, Figure{name, value}) }

func (r *Requirement) set(met bool) {
	r.Status = NotMet
	if met {
		r.Status = Met
	}
}

var (
	linkFresh    = Link{"#freshness", "freshness over time"}
	linkPulls    = Link{"#pulls", "pulls"}
	linkValid    = Link{"#validation", "validation"}
	linkIssues   = Link{"#issues", "data issues"}
	linkRecon    = Link{"#reconciliation", "reconciliation"}
	linkRehearse = Link{"#runs", "rehearsals and cutover"}
	linkConfirm  = Link{"#confirmations", "confirmations"}
	linkAPI      = Link{"#api", "API"}
	linkAudit    = Link{"#audit", "audit"}
	linkReady    = Link{"#readiness", "readiness"}
)

// requirements builds every row from the evidence.
func requirements(ev Evidence) []Requirement {
	rows := []*Requirement{
		reqS1(ev), reqS2(ev), reqS3(ev), reqS4(ev), reqS5(ev), reqS6(ev), reqS7(ev),
		reqT1(ev), reqT2(ev), reqT3(ev), reqT4(ev), reqT5(ev), reqT6(ev),
		reqA1(ev), reqA2(ev), reqA3(ev), reqA4(ev),
	}
	out := make([]Requirement, len(rows))
	for i, r := range rows {
		out[i] = *r
	}
	return out
}

// deltas returns the complete delta pulls.
func (ev Evidence) deltas() []dtm.PullRecord {
	var out []dtm.PullRecord
	for _, p := range ev.completePulls() {
		if !p.Since.IsZero() {
			out = append(out, p)
		}
	}
	return out
}

func reqS1(ev Evidence) *Requirement {
	r := requirement("S1", "An API over the internet keeps the target up to date, so no large final extract is needed.", linkPulls, linkAPI)
	ds := ev.deltas()
	if ev.Initial == nil || len(ds) == 0 {
		return r
	}
	var sum int64
	for _, p := range ds {
		sum += p.Counts.Received
	}
	mean := sum / int64(len(ds))
	r.fig("initial extract", i64(ev.Initial.Counts.Received)+" resources")
	r.fig("delta pulls", strconv.Itoa(len(ds)))
	r.fig("mean delta", fmt.Sprintf("%d resources (%.2f%% of the initial extract)", mean, pct(mean, ev.Initial.Counts.Received)))
	if run, ok := ev.cutoverRun(); ok {
		if s, _ := run.Step(StepPull); s.Status == dtm.StepDone {
			r.fig("final cutover pull", s.Facts["received"]+" resources in "+dur(s.Duration()))
		}
	}
	r.set(mean < ev.Initial.Counts.Received)
	return r
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func reqS2(ev Evidence) *Requirement {
	r := requirement("S2", "The API is available 24 hours a day for the whole migration.", linkPulls)
	if len(ev.Pulls) == 0 {
		return r
	}
	hours := map[int]bool{}
	var failed, unavailable int
	for _, p := range ev.Pulls {
		hours[p.StartedAt.In(dtm.London()).Hour()] = true
		if p.Status == dtm.PullFailed {
			failed++
			if !deniedError(p.Error) {
				unavailable++
			}
		}
	}
	r.fig("pulls attempted", strconv.Itoa(len(ev.Pulls)))
	r.fig("pulls failed for the source's availability", strconv.Itoa(unavailable))
	r.fig("hours of the day sampled", fmt.Sprintf("%d of 24", len(hours)))
	r.Note = "Availability is sampled at the target's pulls only; the source's own uptime monitoring (/healthz, /metrics) is the continuous record."
	r.Status = Partial
	if unavailable > 0 {
		r.Status = NotMet
	}
	return r
}

// freshness returns the pulls with freshness recorded and the worst lag.
func (ev Evidence) freshness() (n, over6, over12 int, worst time.Duration) {
	for _, p := range ev.Pulls {
		if p.SourceFreshness == "" {
			continue
		}
		n++
		worst = max(worst, p.SourceLag)
		if p.SourceLag > dtm.FreshWarnAfter {
			over6++
		}
		if p.SourceLag > dtm.FreshBreachAfter {
			over12++
		}
	}
	return n, over6, over12, worst
}

func reqS3(ev Evidence) *Requirement {
	r := requirement("S3", "Data in the DTM is never more than 12 hours behind the live source system.", linkFresh)
	n, _, over12, worst := ev.freshness()
	if n == 0 {
		return r
	}
	r.fig("freshness samples (one per pull)", strconv.Itoa(n))
	r.fig("worst lag", dur(worst))
	r.fig("samples over 12 h", strconv.Itoa(over12))
	r.set(over12 == 0)
	return r
}

func reqS4(ev Evidence) *Requirement {
	r := requirement("S4", "The SSS can tell when the DTM data was last updated.", linkFresh)
	var n int
	var last dtm.PullRecord
	for _, p := range ev.Pulls {
		if !p.SourceLastUpdated.IsZero() || !p.SourceWatermark.IsZero() {
			n++
			last = p
		}
	}
	if n == 0 {
		return r
	}
	r.fig("pulls that read last-updated and watermark", fmt.Sprintf("%d of %d", n, len(ev.Pulls)))
	r.fig("latest: last updated", Local(last.SourceLastUpdated))
	r.fig("latest: complete as of", Local(last.SourceWatermark))
	r.set(true)
	return r
}

func reqS5(ev Evidence) *Requirement {
	r := requirement("S5", "All updated data is available to the target within 6 hours of changing in the source: records, audit trails, documents and images, tasks and appointments; structured; encrypted in transit.", linkFresh, linkPulls)
	n, over6, _, worst := ev.freshness()
	if n == 0 && ev.HeldTotal == 0 {
		return r
	}
	if n > 0 {
		r.fig("samples over 6 h", fmt.Sprintf("%d of %d (worst %s)", over6, n, dur(worst)))
	}
	var attach, problems int64
	for _, p := range ev.completePulls() {
		attach += p.Counts.Attachments
		problems += p.Counts.AttachmentProblems
	}
	r.fig("attachments fetched and verified", fmt.Sprintf("%d (%d problems)", attach, problems))
	types := slices.Sorted(maps.Keys(ev.Held))
	r.fig("structured FHIR resource types held", fmt.Sprintf("%d: %s", len(types), shortList(types, 12)))
	for _, t := range []string{"Provenance", "AuditEvent", "DocumentReference", "Task", "Appointment"} {
		r.fig(t+" resources held", i64(ev.Held[t]))
	}
	scheme := "-"
	if ev.Plan != nil {
		if u, err := url.Parse(ev.Plan.SourceURL); err == nil {
			scheme = u.Scheme
		}
	}
	r.fig("transport of the planned source", scheme)
	r.Status = Partial
	if n > 0 && over6 == 0 && problems == 0 && scheme == "https" {
		r.Status = Met
	}
	if scheme != "https" {
		r.Note = "The planned source URL is not https: encryption in transit is shown only for a production source."
	}
	return r
}

func shortList(xs []string, n int) string {
	if len(xs) <= n {
		return fmt.Sprint(xs)
	}
	return fmt.Sprintf("%v and %d more", xs[:n], len(xs)-n)
}

func reqS6(ev Evidence) *Requirement {
	r := requirement("S6", "The SSS answers data issues raised by the TSS in time for the cutover.", linkIssues)
	if !ev.IssuesKnown {
		return r
	}
	var pol dtm.IssuePolicy
	var responded, late, open int
	var worst time.Duration
	for _, i := range ev.Issues {
		if i.Status != dtm.IssueClosed {
			open++
		}
		if i.RespondedAt.IsZero() {
			continue
		}
		responded++
		worst = max(worst, i.RespondedAt.Sub(i.AwaitingSince))
		if i.RespondedAt.After(pol.AcknowledgeBy(i.AwaitingSince)) {
			late++
		}
	}
	r.fig("issues raised", strconv.Itoa(len(ev.Issues)))
	r.fig("answered by the source", strconv.Itoa(responded))
	r.fig("answered later than 1 working day", strconv.Itoa(late))
	r.fig("slowest answer", dur(worst))
	r.fig("not closed", strconv.Itoa(open))
	r.set(late == 0 && (ev.Plan == nil || open == 0 || ev.GeneratedAt.Before(ev.Plan.WindowStart)))
	return r
}

func reqS7(ev Evidence) *Requirement {
	r := requirement("S7", "Multiple retrievals by one TSS within 24 hours happen only when agreed beforehand.", linkPulls, linkAudit)
	if len(ev.Pulls) == 0 {
		return r
	}
	most := 0
	for i, p := range ev.Pulls {
		n := 0
		for _, q := range ev.Pulls[i:] {
			if q.StartedAt.Sub(p.StartedAt) < 24*time.Hour && !q.StartedAt.Before(p.StartedAt) {
				n++
			}
		}
		most = max(most, n)
	}
	r.fig("most exports started in any 24 hours", strconv.Itoa(most))
	r.Note = "The source enforces each client's agreed limit at kick-off (dtm source clients) and audits every kick-off."
	r.Status = Met
	if most > 1 {
		r.Status = Partial
		r.Note = "More than one export in 24 hours: the source allows this only under a recorded agreement (dtm source clients list)."
	}
	return r
}

func reqT1(ev Evidence) *Requirement {
	r := requirement("T1", "The target consumes the data within 6 hours of it becoming available.", linkPulls)
	ps := ev.completePulls()
	if len(ps) == 0 {
		return r
	}
	var worst time.Duration
	late := 0
	for _, p := range ps {
		l := p.ConsumeLatency()
		worst = max(worst, l)
		if l > dtm.ConsumeWithin {
			late++
		}
	}
	r.fig("complete pulls", strconv.Itoa(len(ps)))
	r.fig("worst time from available to applied", dur(worst))
	r.fig("over 6 h", strconv.Itoa(late))
	r.set(late == 0)
	return r
}

func reqT2(ev Evidence) *Requirement {
	r := requirement("T2", "The target retrieves at least once a week.", linkPulls)
	ps := ev.completePulls()
	if len(ps) == 0 {
		return r
	}
	var gap time.Duration
	for i := 1; i < len(ps); i++ {
		gap = max(gap, ps[i].FinishedAt.Sub(ps[i-1].FinishedAt))
	}
	since := ev.GeneratedAt.Sub(ps[len(ps)-1].FinishedAt)
	r.fig("complete pulls", strconv.Itoa(len(ps)))
	r.fig("longest gap between pulls", dur(gap))
	r.fig("since the last pull", dur(since))
	run, cut := ev.cutoverRun()
	r.set(gap <= dtm.RetrieveWithin && (since <= dtm.RetrieveWithin || (cut && run.State == dtm.RunLive)))
	return r
}

func reqT3(ev Evidence) *Requirement {
	r := requirement("T3", "The target knows when the DTM data was last updated.", linkFresh)
	n, _, _, _ := ev.freshness()
	ps := ev.completePulls()
	if n == 0 || len(ps) == 0 {
		return r
	}
	last := ps[len(ps)-1]
	r.fig("pulls that recorded the source's freshness", fmt.Sprintf("%d of %d", n, len(ev.Pulls)))
	r.fig("target holds data as of", Local(last.TransactionTime))
	r.fig("source last updated (at that pull)", Local(last.SourceLastUpdated))
	r.set(true)
	return r
}

func reqT4(ev Evidence) *Requirement {
	r := requirement("T4", "The target checks that consumed data is in the expected format.", linkValid)
	var received, quarantined, warnings int64
	for _, p := range ev.completePulls() {
		received += p.Counts.Received
		quarantined += p.Counts.Quarantined
		warnings += p.Counts.Warnings
	}
	if received == 0 {
		return r
	}
	r.fig("resources validated (FHIR R4 and UK Core)", i64(received))
	r.fig("quarantined with a reason", fmt.Sprintf("%d (%.3f%%)", quarantined, pct(quarantined, received)))
	r.fig("warnings", i64(warnings))
	for _, reason := range slices.Sorted(maps.Keys(ev.Quarantine)) {
		r.fig("quarantine: "+reason, i64(ev.Quarantine[reason]))
	}
	r.set(true)
	return r
}

func reqT5(ev Evidence) *Requirement {
	r := requirement("T5", "The target notifies the SSS of data issues promptly.", linkIssues, linkValid)
	var quarantined int64
	for _, n := range ev.Quarantine {
		quarantined += n
	}
	if !ev.IssuesKnown {
		if quarantined == 0 && len(ev.completePulls()) > 0 {
			r.fig("resources quarantined", "0")
			r.Status = Partial
			r.Note = "Nothing was quarantined, so nothing needed raising; the issue log itself was not available to this report."
		}
		return r
	}
	auto := 0
	for _, i := range ev.Issues {
		if len(i.Key) > 5 && i.Key[:5] == "auto:" {
			auto++
		}
	}
	r.fig("resources quarantined", i64(quarantined))
	r.fig("issues raised", strconv.Itoa(len(ev.Issues)))
	r.fig("raised automatically after a pull", strconv.Itoa(auto))
	r.set(quarantined == 0 || len(ev.Issues) > 0)
	return r
}

func reqT6(ev Evidence) *Requirement {
	r := requirement("T6", "The target confirms in writing, at least 2 weeks before the cutover date, that the data and the DTM are fit for a weekend cutover.", linkConfirm, linkReady)
	if ev.Plan == nil {
		return r
	}
	r.fig("deadline", Local(ev.Plan.ReadinessDeadline))
	var c *dtm.Confirmation
	for i := range ev.Confirms {
		if ev.Confirms[i].Kind == dtm.ConfirmReadiness {
			c = &ev.Confirms[i]
		}
	}
	if c == nil {
		r.fig("confirmation", NoEvidence)
		r.Status = NotMet
		if ev.GeneratedAt.Before(ev.Plan.ReadinessDeadline) {
			r.Status = Partial
		}
		return r
	}
	r.fig("confirmed by", c.Name+", "+c.Role+", "+c.Organisation)
	r.fig("confirmed at", Local(c.At)+" ("+dur(ev.Plan.WindowStart.Sub(c.At))+" before the cutover)")
	r.fig("seal", sealState(*c))
	r.set(!c.At.After(ev.Plan.ReadinessDeadline) && Verify(*c))
	return r
}

func sealState(c dtm.Confirmation) string {
	if Verify(c) {
		return "intact (" + c.Digest[:16] + "…)"
	}
	return "BROKEN"
}

func reqA1(ev Evidence) *Requirement {
	r := requirement("A1", "Complete technical details of the API are available for review (OpenAPI, FHIR CapabilityStatement, docs).", linkAPI)
	a := ev.API
	if len(a.Paths) > 0 {
		r.fig("OpenAPI", fmt.Sprintf("%s %s: %d operations", a.OpenAPITitle, a.OpenAPIVersion, len(a.Paths)))
	}
	if a.FHIRVersion != "" {
		r.fig("CapabilityStatement", fmt.Sprintf("FHIR %s, %s, %d resource types, %d operations", a.FHIRVersion, a.Software, len(a.Resources), len(a.Operations)))
	}
	switch {
	case len(a.Paths) > 0 && a.FHIRVersion != "":
		r.Status = Met
	case len(a.Paths) > 0 || a.FHIRVersion != "":
		r.Status = Partial
	}
	return r
}

func reqA2(ev Evidence) *Requirement {
	r := requirement("A2", "Demonstrable in a test environment with synthetic data.", linkRehearse)
	rs := ev.rehearsals()
	if len(rs) == 0 {
		return r
	}
	r.fig("rehearsals recorded", strconv.Itoa(len(rs)))
	last := rs[0]
	r.fig("last rehearsal", Local(last.StartedAt)+", "+dur(Elapsed(last)))
	if last.Reconcile != nil {
		r.fig("its reconciliation", fmt.Sprintf("match %v (%d resources)", last.Reconcile.Match, last.Reconcile.SourceTotal))
	}
	r.Note = "Whether the rehearsed practice is synthetic is not recorded here; dtm demo and the test suite run on generated practices."
	r.set(last.Reconcile != nil && last.Reconcile.Match)
	return r
}

func reqA3(ev Evidence) *Requirement {
	r := requirement("A3", "An initial extract of the whole practice is ingested, processed and validated by the target for integrity.", linkPulls, linkRecon)
	if ev.Initial == nil {
		return r
	}
	p := ev.Initial
	c := p.Counts
	r.fig("initial extract", fmt.Sprintf("%d received, %d applied, %d quarantined, %d files", c.Received, c.Applied, c.Quarantined, c.Files))
	r.fig("counts reconcile", strconv.FormatBool(c.Received == c.Applied+c.Skipped+c.Quarantined))
	r.fig("took", dur(p.FinishedAt.Sub(p.StartedAt)))
	var first *dtm.ReconcileSummary
	for i := range ev.Reconciles {
		first = &ev.Reconciles[i] // newest first: the last is the oldest
	}
	if first == nil {
		r.fig("reconciliation", NoEvidence)
		r.Status = Partial
		return r
	}
	r.fig("first reconciliation", fmt.Sprintf("%s: match %v, %d resources, quarantine %d", Local(first.At), first.Match, first.SourceTotal, first.Quarantined))
	r.set(first.Match && c.Received == c.Applied+c.Skipped+c.Quarantined)
	return r
}

func reqA4(ev Evidence) *Requirement {
	r := requirement("A4", "Evidence that a weekend cutover (Friday 17:00 → Monday 08:00, Europe/London) can be performed: a plan, a rehearsal, timings, and both suppliers' statements.", linkRehearse, linkConfirm, linkReady)
	if ev.Plan == nil {
		return r
	}
	p := ev.Plan
	r.fig("plan", fmt.Sprintf("%s → %s (%s)", Local(p.WindowStart), Local(p.GoLive), hours(p.Window())))
	rs := ev.rehearsals()
	if len(rs) > 0 {
		r.fig("last rehearsal took", dur(Elapsed(rs[0])))
	} else {
		r.fig("rehearsal", NoEvidence)
	}
	if ev.Readiness != nil && ev.Readiness.Prediction.Measured {
		pr := ev.Readiness.Prediction
		r.fig("predicted cutover", fmt.Sprintf("%s, %.2f%% of the window", dur(pr.Predicted), 100*pr.Share))
	}
	kinds := map[string]bool{}
	for _, c := range ev.Confirms {
		if Verify(c) {
			kinds[c.Kind] = true
		}
	}
	r.fig("source supplier's statement", recorded(kinds[dtm.ConfirmSourceStatement]))
	r.fig("target supplier's statement", recorded(kinds[dtm.ConfirmTargetStatement]))
	if run, ok := ev.cutoverRun(); ok {
		end := run.FinishedAt
		if end.IsZero() {
			end = run.UpdatedAt
		}
		r.fig("cutover run", fmt.Sprintf("%s, %s after the window opened", run.State, dur(end.Sub(p.WindowStart))))
	}
	full := len(rs) > 0 && kinds[dtm.ConfirmSourceStatement] && kinds[dtm.ConfirmTargetStatement]
	r.Status = Partial
	if full {
		r.Status = Met
	}
	return r
}

func recorded(ok bool) string {
	if ok {
		return "recorded, seal intact"
	}
	return NoEvidence
}
