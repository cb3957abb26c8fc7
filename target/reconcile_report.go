package target

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dtm-project/dtm/reconcile"
)

// maxListed bounds the differences the readable forms list; report.json
// lists them all.
const maxListed = 200

// WriteSummary writes a few readable lines about r to w: the result, the
// totals on both sides and, when they differ, what differs.
func (r ReconcileReport) WriteSummary(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "reconcile %s with %s at %s: %s\n", r.Practice, r.Source, r.TransactionTime.UTC().Format(time.RFC3339Nano), resultWords(r))
	fmt.Fprintf(&b, "  source   %d resources in %d buckets, root %s\n", r.SourceDigest.Total, r.SourceDigest.Buckets, short(r.SourceDigest.Root))
	fmt.Fprintf(&b, "  target   %d resources in %d buckets, root %s\n", r.TargetDigest.Total, r.TargetDigest.Buckets, short(r.TargetDigest.Root))
	for _, t := range r.CountsDiffer {
		fmt.Fprintf(&b, "  count    %-24s source %d, target %d\n", t, r.SourceDigest.Counts[t], r.TargetDigest.Counts[t])
	}
	if len(r.DifferentBuckets) > 0 {
		fmt.Fprintf(&b, "  buckets  %d differ\n", len(r.DifferentBuckets))
	}
	for _, k := range []string{reconcile.Missing, reconcile.Extra, reconcile.Different, reconcile.Quarantined} {
		if n := r.Summary[k]; n > 0 {
			fmt.Fprintf(&b, "  %-8s %d\n", k, n)
		}
	}
	for i, d := range r.Differences {
		if i == maxListed {
			fmt.Fprintf(&b, "  ... and %d more (see report.json)\n", len(r.Differences)-maxListed)
			break
		}
		fmt.Fprintf(&b, "    %-11s %s%s\n", d.Kind, d.Resource, detail(d))
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "  warning  %s\n", w)
	}
	fmt.Fprintf(&b, "  timings  source digest %s, target digest %s %s, drill-down %s, total %s\n",
		ms(r.Timings["sourceDigest"]), r.TargetTree, ms(r.Timings["targetDigest"]), ms(r.Timings["drillDown"]), ms(r.Timings["total"]))
	_, err := w.Write(b.Bytes())
	return err
}

func resultWords(r ReconcileReport) string {
	switch r.Result {
	case ReconcileMatch:
		return "MATCH (the target holds exactly what the source holds)"
	case ReconcileAccounted:
		return fmt.Sprintf("ACCOUNTED (%d resources quarantined, nothing else differs)", r.Summary[reconcile.Quarantined])
	}
	return "MISMATCH"
}

// detail describes where a difference lies: versions and buckets.
func detail(d reconcile.Difference) string {
	s := ""
	if d.SourceVersion > 0 {
		s += fmt.Sprintf(" source v%d", d.SourceVersion)
	}
	if d.TargetVersion > 0 {
		s += fmt.Sprintf(" target v%d", d.TargetVersion)
	}
	if d.Kind == reconcile.Different && d.SourceBucket != d.TargetBucket {
		s += fmt.Sprintf(" (compartment %q at the source, %q at the target)", d.SourceBucket, d.TargetBucket)
	}
	if d.Reason != "" {
		s += " (" + d.Reason + ")"
	}
	return s
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

func ms(m Milliseconds) string { return time.Duration(m).Round(time.Millisecond).String() }

// WriteReport writes the integrity report into dir (created if needed) as
// report.json (everything, machine-readable) and report.md (readable).
func WriteReport(dir string, in Integrity) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	j, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(j, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	var b bytes.Buffer
	in.writeMarkdown(&b)
	if err := os.WriteFile(filepath.Join(dir, "report.md"), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// writeMarkdown writes the readable report.
func (in Integrity) writeMarkdown(b *bytes.Buffer) {
	fmt.Fprintf(b, "# Integrity report: practice %s\n\n", in.Practice)
	fmt.Fprintf(b, "Source `%s`, generated %s.\n\n", in.Source, in.GeneratedAt.UTC().Format(time.RFC3339))
	if r := in.Reconciliation; r != nil {
		fmt.Fprintf(b, "## Reconciliation\n\n**%s** at the source snapshot of %s.\n\n", resultWords(*r), r.TransactionTime.UTC().Format(time.RFC3339Nano))
		fmt.Fprintf(b, "| | source | target |\n|---|---:|---:|\n")
		fmt.Fprintf(b, "| resources | %d | %d |\n| buckets (patients, and no patient) | %d | %d |\n",
			r.SourceDigest.Total, r.TargetDigest.Total, r.SourceDigest.Buckets, r.TargetDigest.Buckets)
		fmt.Fprintf(b, "| outside Group scope (deducted patients) | %d | %d |\n", r.SourceDigest.Excluded, r.TargetDigest.Excluded)
		fmt.Fprintf(b, "| root digest | `%s` | `%s` |\n", short(r.SourceDigest.Root), short(r.TargetDigest.Root))
		types := slices.Sorted(func(yield func(string) bool) {
			for t := range r.SourceDigest.Counts {
				if !yield(t) {
					return
				}
			}
			for t := range r.TargetDigest.Counts {
				if _, ok := r.SourceDigest.Counts[t]; !ok && !yield(t) {
					return
				}
			}
		})
		for _, t := range types {
			mark := ""
			if r.SourceDigest.Counts[t] != r.TargetDigest.Counts[t] {
				mark = " ≠"
			}
			fmt.Fprintf(b, "| %s%s | %d | %d |\n", t, mark, r.SourceDigest.Counts[t], r.TargetDigest.Counts[t])
		}
		if len(r.Differences) > 0 {
			fmt.Fprintf(b, "\n### Differences\n\n| kind | resource | detail |\n|---|---|---|\n")
			for i, d := range r.Differences {
				if i == maxListed {
					fmt.Fprintf(b, "\n… and %d more in report.json.\n", len(r.Differences)-maxListed)
					break
				}
				fmt.Fprintf(b, "| %s | %s | %s |\n", d.Kind, d.Resource, detail(d))
			}
		}
		for _, w := range r.Warnings {
			fmt.Fprintf(b, "\n> Warning: %s\n", w)
		}
		fmt.Fprintf(b, "\nTimings: source digest %s, target digest %s, drill-down %s, total %s.\n",
			ms(r.Timings["sourceDigest"]), ms(r.Timings["targetDigest"]), ms(r.Timings["drillDown"]), ms(r.Timings["total"]))
	}
	for _, p := range []struct {
		title string
		s     *PullIntegrity
	}{{"Initial extract", in.InitialExtract}, {"Latest pull", in.LatestPull}} {
		if p.s == nil {
			continue
		}
		s := p.s
		c := s.Counts
		fmt.Fprintf(b, "\n## %s (pull %s)\n\n", p.title, s.ID)
		fmt.Fprintf(b, "| | |\n|---|---:|\n")
		fmt.Fprintf(b, "| received | %d |\n| applied | %d |\n| unchanged | %d |\n| quarantined | %d |\n| deletes | %d |\n| warnings | %d |\n",
			c.Received, c.Applied, c.Skipped, c.Quarantined, c.Deleted, c.Warnings)
		fmt.Fprintf(b, "| source errors | %d |\n| attachments verified | %d |\n| attachment problems | %d |\n| files | %d |\n| bytes | %d |\n",
			c.SourceErrors, c.Attachments, c.AttachmentProblems, c.Files, c.Bytes)
		fmt.Fprintf(b, "| started | %s |\n| export ready | %s |\n| finished | %s |\n| duration | %s |\n| consume latency (T1) | %s |\n",
			stamp(s.StartedAt), stamp(s.AvailableAt), stamp(s.FinishedAt), ms(s.Duration), ms(s.ConsumeLatency))
		if len(s.Quarantine) > 0 {
			fmt.Fprintf(b, "\nQuarantined by rule:\n\n| rule | resources |\n|---|---:|\n")
			for _, k := range sortedKeys(s.Quarantine) {
				fmt.Fprintf(b, "| %s | %d |\n", k, s.Quarantine[k])
			}
		}
	}
	c := in.Totals
	fmt.Fprintf(b, "\n## All %d complete pulls\n\nReceived %d = applied %d + unchanged %d + quarantined %d.\n",
		in.CompletePulls, c.Received, c.Applied, c.Skipped, c.Quarantined)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format(time.RFC3339)
}
