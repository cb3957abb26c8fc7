package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/cutover"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newReportCmd) }

func newReportCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Reports for the assurance team",
	}
	cmd.AddCommand(newReportEvidenceCmd(e))
	return cmd
}

// reportEvidenceOptions are the flags of "dtm report evidence".
type reportEvidenceOptions struct {
	db, out, practice, openapi, source, sourceDB string
	pdf                                          string
	days                                         int
	access                                       issuesOptions // credentials for the source's issue log
}

func newReportEvidenceCmd(e *env) *cobra.Command {
	var o reportEvidenceOptions
	cmd := &cobra.Command{
		Use:   "evidence --db URL --out DIR",
		Short: "Write the assurance evidence report (HTML, and PDF when Chromium is installed)",
		Long: `Write a self-contained HTML report (inline CSS, inline SVG charts, no scripts)
for the NHS assurance team into DIR/index.html, with its data in DIR/evidence.json:

  - every requirement S1–S7, T1–T6 and A1–A4 with the recorded figures that show it
    is met, or "no evidence recorded" where nothing was recorded;
  - the API's technical details, from docs/openapi.yaml and the source's
    CapabilityStatement (GET {source}/fhir/metadata);
  - freshness and consumption over time, pulls, validation and data issues,
    reconciliations, the rehearsal and cutover timelines, and the readiness
    confirmation and both suppliers' statements.

With Chromium installed (chromium on PATH) it also prints DIR/evidence.pdf.
The report holds no patient data.`,
		Example: `  dtm report evidence --db sqlite:target.db --out evidence/
  dtm report evidence --db sqlite:target.db --source-db sqlite:source.db --out evidence/ --pdf never`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.out == "" {
				return usageError{errors.New("--out is required")}
			}
			return runReportEvidence(cmd.Context(), e, o)
		},
	}
	cmd.Flags().StringVar(&o.db, "db", defaultTargetDB, "target store: sqlite:PATH or postgres://...")
	cmd.Flags().StringVar(&o.out, "out", "", "directory to write the report into")
	cmd.Flags().StringVar(&o.practice, "practice", "", "ODS code (default: the one practice with a cutover plan)")
	cmd.Flags().StringVar(&o.openapi, "openapi", "docs/openapi.yaml", "the OpenAPI document to summarise")
	cmd.Flags().StringVar(&o.source, "source", "", "the source's base URL for its CapabilityStatement (default: the plan's)")
	cmd.Flags().StringVar(&o.sourceDB, "source-db", "", "the source store, when reachable from here: its data issue and audit logs (default: the issue log over the source's API)")
	o.access.addAccessFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.pdf, "pdf", "auto", "print a PDF with Chromium: auto (when installed), always or never")
	cmd.Flags().IntVar(&o.days, "days", 28, "the readiness assessment's period, when none was signed")
	return cmd
}

func runReportEvidence(ctx context.Context, e *env, o reportEvidenceOptions) error {
	log := e.logger()
	st, err := openCutoverStore(ctx, o.db, log)
	if err != nil {
		return err
	}
	defer st.Close()
	practice, err := reportPractice(ctx, st, o.practice)
	if err != nil {
		return err
	}
	src, closeSrc, err := openSourceStore(ctx, o.sourceDB, log)
	if err != nil {
		return err
	}
	defer closeSrc()
	in := cutover.EvidenceInput{Practice: practice, Store: st, State: st, Journal: st, Now: time.Now(),
		Options: cutover.Options{Days: o.days}}
	if al, ok := src.(dtm.AuditLog); ok {
		in.Audit = al
	}
	if in.OpenAPI, err = os.ReadFile(o.openapi); err != nil {
		log.Warn("OpenAPI document not read: the report will say so", "path", o.openapi, "err", err)
	}
	source := o.source
	if source == "" {
		if plan, err := cutover.ActivePlan(ctx, st, practice); err == nil {
			source = plan.SourceURL
		}
	}
	access := o.access
	access.source = source
	in.Issues = sourceIssues(ctx, e, access, src, practice, "")
	if source != "" {
		in.CapabilitySource = strings.TrimRight(source, "/") + "/fhir/metadata"
		if in.Capability, err = fetchCapability(ctx, in.CapabilitySource); err != nil {
			log.Warn("CapabilityStatement not read: the report will say so", "url", in.CapabilitySource, "err", err)
		}
	}
	ev, err := cutover.BuildEvidence(ctx, in)
	if err != nil {
		return err
	}
	chromium := ""
	switch o.pdf {
	case "auto":
		chromium = cutover.FindChromium()
	case "always":
		if chromium = cutover.FindChromium(); chromium == "" {
			return errors.New("--pdf always: chromium is not installed")
		}
	case "never":
	default:
		return usageError{fmt.Errorf("--pdf must be auto, always or never")}
	}
	paths, err := cutover.WriteEvidence(ctx, o.out, ev, chromium)
	for _, p := range paths {
		fmt.Fprintln(e.stdout, p)
	}
	if err != nil {
		return err
	}
	if chromium == "" {
		fmt.Fprintln(e.stdout, "(no PDF: chromium is not installed)")
	}
	counts := map[string]int{}
	for _, r := range ev.Requirements {
		counts[r.Status]++
	}
	fmt.Fprintf(e.stdout, "requirements: %d met, %d partial, %d not met, %d without evidence\n",
		counts[cutover.Met], counts[cutover.Partial], counts[cutover.NotMet], counts[cutover.NoEvidenceShow])
	return nil
}

// reportPractice returns the practice to report on: the one given, or the
// only practice with a cutover plan.
func reportPractice(ctx context.Context, st dtm.Cutovers, practice string) (string, error) {
	if practice != "" {
		return practice, checkCutoverPractice(practice)
	}
	plans, err := st.CutoverPlans(ctx, "")
	if err != nil {
		return "", err
	}
	seen := map[string]bool{}
	for _, p := range plans {
		seen[p.Practice] = true
	}
	if len(seen) != 1 {
		return "", usageError{fmt.Errorf("--practice is required: %d practices have cutover plans", len(seen))}
	}
	return plans[0].Practice, nil
}

// fetchCapability reads the source's CapabilityStatement (public, no
// token needed).
func fetchCapability(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 4<<20))
}
