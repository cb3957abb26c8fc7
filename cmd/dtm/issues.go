package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/target"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { subcommands = append(subcommands, newIssuesCmd) }

// issuesOptions are the flags every "dtm issues" subcommand shares: where
// the source is and how to authenticate to it.
type issuesOptions struct {
	source, practice              string
	clientID, keyFile, kid, alg   string
	scope, caFile, actor, output  string
	minBackoff, maxBackoff, maxRA time.Duration
}

func (o *issuesOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.source, "source", "", "the source DTM's base URL")
	fs.StringVar(&o.practice, "practice", "", "ODS code of the practice")
	o.addAccessFlags(fs)
	fs.StringVar(&o.actor, "actor", "", "the person acting, recorded with the client id")
	fs.StringVar(&o.output, "output", "text", "output: text or json")
}

// addAccessFlags registers the flags that say how to reach and
// authenticate to the source, for commands that only read its issues.
func (o *issuesOptions) addAccessFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.clientID, "client-id", "", "client id registered at the source (SMART Backend Services)")
	fs.StringVar(&o.keyFile, "key", "", "private key file (PEM) for --client-id")
	fs.StringVar(&o.kid, "kid", "", "key id in the registered JWKS (default: the key's thumbprint)")
	fs.StringVar(&o.alg, "alg", "", "ES384, RS384 or RS512 (default from the key)")
	fs.StringVar(&o.scope, "scope", "system/*.rs", "scope to request (the source supplier's ingest client: dtm/ingest)")
	fs.StringVar(&o.caFile, "ca-cert", "", "trust this CA certificate (PEM) too")
	fs.DurationVar(&o.minBackoff, "min-backoff", 500*time.Millisecond, "first retry delay")
	fs.DurationVar(&o.maxBackoff, "max-backoff", 30*time.Second, "longest retry delay")
	fs.DurationVar(&o.maxRA, "max-retry-after", 10*time.Minute, "longest Retry-After honoured")
}

// client returns a client for the source, authenticating when --client-id
// is given.
func (o *issuesOptions) client(ctx context.Context, e *env) (*target.Client, error) {
	switch {
	case o.source == "":
		return nil, usageError{errors.New("--source is required")}
	case !dtm.ValidODS(o.practice):
		return nil, usageError{fmt.Errorf("--practice %q is not an ODS code", o.practice)}
	case (o.clientID == "") != (o.keyFile == ""):
		return nil, usageError{errors.New("--client-id and --key go together")}
	case o.output != "text" && o.output != "json":
		return nil, usageError{errors.New("--output must be text or json")}
	}
	hc, err := targetHTTPClient(o.caFile)
	if err != nil {
		return nil, err
	}
	copts := target.ClientOptions{HTTP: hc, Logger: e.logger(), MinBackoff: o.minBackoff, MaxBackoff: o.maxBackoff,
		MaxRetryAfter: o.maxRA, UserAgent: "dtm-issues"}
	if o.clientID != "" {
		po := targetPullOptions{source: o.source, clientID: o.clientID, keyFile: o.keyFile, kid: o.kid, alg: o.alg, scope: o.scope}
		if copts.Auth, err = clientCredentials(ctx, po, hc); err != nil {
			return nil, err
		}
	}
	c, err := target.NewClient(o.source, copts)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

func newIssuesCmd(e *env) *cobra.Command {
	o := &issuesOptions{}
	cmd := &cobra.Command{
		Use:   "issues",
		Short: "Raise, answer and close data issues between the target and the source",
		Long: `Data issues are kept by the source DTM (/dtm/v1/practices/{ods}/issues). The
target raises them (and "dtm target pull" raises validation failures by itself,
grouped by rule); the source supplier acknowledges, answers, resolves or rejects
them; the target verifies and closes or reopens them. Every action is timestamped
and attributed to the client id (and --actor), and kept as the issue's history.
The source must respond within one working day (Mon-Fri, Europe/London); "list"
shows what is overdue.

Target actions: raise, close, reopen. Source actions (ingest credentials): ack,
answer, resolve, reject. Either side: comment. See docs/RECONCILIATION.md.`,
		Example: `  dtm issues list --source https://dtm.sss.example --practice A81001 --status active
  dtm issues raise --source ... --practice A81001 --severity error --category other \
      --title "Scanned letters missing" --text "..." --resource DocumentReference/doc-1
  dtm issues ack 12 --source ... --practice A81001 --client-id sss --key sss.pem --scope dtm/ingest
  dtm issues close 12 --source ... --practice A81001 --text "verified after pull"`,
	}
	o.addFlags(cmd.PersistentFlags())
	cmd.AddCommand(newIssuesListCmd(e, o), newIssuesShowCmd(e, o), newIssuesRaiseCmd(e, o))
	for _, a := range []struct{ use, action, short string }{
		{"ack", "acknowledge", "Acknowledge an issue (source)"},
		{"answer", "answer", "Answer an issue with an explanation or a question (source; --text required)"},
		{"resolve", "resolve", "Say an issue is fixed at the source (source)"},
		{"reject", "reject", "Say an issue is not a data problem or will not be fixed (source; --text required)"},
		{"close", "close", "Close an issue after verifying it (target)"},
		{"reopen", "reopen", "Reopen an issue (target)"},
		{"comment", "comment", "Add a note to an issue (either side; --text required)"},
	} {
		cmd.AddCommand(newIssuesActionCmd(e, o, a.use, a.action, a.short))
	}
	return cmd
}

func newIssuesListCmd(e *env, o *issuesOptions) *cobra.Command {
	var status string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a practice's issues with their status and response times",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(cmd.Context(), e)
			if err != nil {
				return err
			}
			is, err := c.ListIssues(cmd.Context(), o.practice, status)
			if err != nil {
				return err
			}
			if o.output == "json" {
				out := make([]issueView, len(is))
				for k, i := range is {
					out[k] = viewIssue(i)
				}
				return writeIssuesJSON(e.stdout, out)
			}
			printIssueList(e.stdout, is)
			return nil
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only these statuses (comma-separated: open, acknowledged, answered, resolved, rejected, closed; active = all but closed)")
	return cmd
}

func newIssuesShowCmd(e *env, o *issuesOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show an issue with its resources and history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(cmd.Context(), e)
			if err != nil {
				return err
			}
			i, err := c.GetIssue(cmd.Context(), o.practice, args[0])
			if err != nil {
				return err
			}
			return o.printIssue(e.stdout, i)
		},
	}
}

func newIssuesRaiseCmd(e *env, o *issuesOptions) *cobra.Command {
	var r target.IssueRequest
	var resourcesFile, outcomeFile string
	cmd := &cobra.Command{
		Use:   "raise --severity S --category C --title T [--resource Type/id]...",
		Short: "Raise a data issue with the source (target)",
		Long: `Raise a data issue about the practice. Name the affected resources by Type/id
(--resource, repeatable, or --resources-file with one per line) and never put
patient data in the title or text. --outcome-file attaches a FHIR
OperationOutcome (JSON).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if resourcesFile != "" {
				b, err := os.ReadFile(resourcesFile)
				if err != nil {
					return err
				}
				r.Resources = append(r.Resources, strings.Fields(string(b))...)
			}
			if outcomeFile != "" {
				b, err := os.ReadFile(outcomeFile)
				if err != nil {
					return err
				}
				r.Outcome = b
			}
			c, err := o.client(cmd.Context(), e)
			if err != nil {
				return err
			}
			r.Actor = o.actor
			i, err := c.RaiseIssue(cmd.Context(), o.practice, r)
			if err != nil {
				return err
			}
			return o.printIssue(e.stdout, i)
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.Severity, "severity", "error", "fatal, error, warning or information")
	f.StringVar(&r.Category, "category", dtm.IssueOther, "validation, attachment, load, source-error, reconciliation or other")
	f.StringVar(&r.Rule, "rule", "", "the rule that failed, if any")
	f.StringVar(&r.Key, "key", "", "deduplication key: refused while an open issue of the practice has it")
	f.StringVar(&r.Title, "title", "", "one-line summary (no patient data)")
	f.StringVar(&r.Text, "text", "", "description (no patient data)")
	f.StringSliceVar(&r.Resources, "resource", nil, "an affected resource, Type/id (repeatable)")
	f.StringVar(&resourcesFile, "resources-file", "", "file of affected resources, Type/id, one per line")
	f.StringVar(&outcomeFile, "outcome-file", "", "file holding a FHIR OperationOutcome (JSON)")
	return cmd
}

func newIssuesActionCmd(e *env, o *issuesOptions, use, action, short string) *cobra.Command {
	var text string
	cmd := &cobra.Command{
		Use:   use + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(cmd.Context(), e)
			if err != nil {
				return err
			}
			i, err := c.IssueAction(cmd.Context(), o.practice, args[0], action, target.IssueRequest{Text: text, Actor: o.actor})
			if err != nil {
				return err
			}
			return o.printIssue(e.stdout, i)
		},
	}
	cmd.Flags().StringVar(&text, "text", "", "what to say (no patient data)")
	return cmd
}

// printIssue writes one issue in the chosen output.
func (o *issuesOptions) printIssue(w io.Writer, i target.Issue) error {
	if o.output == "json" {
		return writeIssuesJSON(w, viewIssue(i))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "issue\t%s (%s)\n", i.ID, i.Practice)
	fmt.Fprintf(tw, "status\t%s%s\n", i.Status, waiting(i))
	fmt.Fprintf(tw, "severity\t%s\ncategory\t%s\n", i.Severity, i.Category)
	if i.Rule != "" {
		fmt.Fprintf(tw, "rule\t%s\n", i.Rule)
	}
	if i.Key != "" {
		fmt.Fprintf(tw, "key\t%s\n", i.Key)
	}
	fmt.Fprintf(tw, "title\t%s\n", i.Title)
	fmt.Fprintf(tw, "raised\t%s by %s\n", when(i.RaisedAt), i.RaisedBy)
	if !i.Timing.Due.IsZero() {
		fmt.Fprintf(tw, "response due\t%s%s\n", when(i.Timing.Due), timingNote(i))
	}
	fmt.Fprintf(tw, "resources\t%d\n", i.ResourceCount)
	tw.Flush()
	if i.Text != "" {
		fmt.Fprintf(w, "\n%s\n", i.Text)
	}
	if len(i.Resources) > 0 {
		fmt.Fprintln(w)
		for n, r := range i.Resources {
			if n == 50 {
				fmt.Fprintf(w, "  ... and %d more (--output json lists them all)\n", len(i.Resources)-50)
				break
			}
			fmt.Fprintf(w, "  %s\n", r)
		}
	}
	if len(i.History) > 0 {
		fmt.Fprintln(w, "\nhistory:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, h := range i.History {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s → %s\t%s\n", when(h.At), h.Actor, h.Action, orDash(h.From), h.To, h.Text)
		}
		tw.Flush()
	}
	return nil
}

// printIssueList writes a table of issues and how many are overdue.
func printIssueList(w io.Writer, is []target.Issue) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSEVERITY\tCATEGORY\tRULE\tRESOURCES\tRAISED\tDUE\tTITLE")
	overdue := 0
	for _, i := range is {
		due := when(i.Timing.Due)
		if i.Timing.Overdue {
			due += " OVERDUE"
			overdue++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", i.ID, i.Status, i.Severity, i.Category, orDash(i.Rule),
			i.ResourceCount, when(i.RaisedAt), due, i.Title)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d issues, %d overdue\n", len(is), overdue)
}

// issueView is an issue as --output json writes it.
type issueView struct {
	dtm.DataIssue
	Outcome json.RawMessage `json:",omitempty"`
	Timing  dtm.IssueTiming
}

func viewIssue(i target.Issue) issueView {
	return issueView{DataIssue: i.DataIssue, Outcome: json.RawMessage(i.Outcome), Timing: i.Timing}
}

func writeIssuesJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func waiting(i target.Issue) string {
	if i.Timing.WaitingOn == "" {
		return ""
	}
	return " (waiting on the " + i.Timing.WaitingOn + ")"
}

func timingNote(i target.Issue) string {
	switch {
	case i.Timing.Overdue:
		return " — OVERDUE"
	case i.Timing.Late:
		return fmt.Sprintf(" — answered late, after %s", i.Timing.ResponseTime.Round(time.Minute))
	case !i.RespondedAt.IsZero():
		return fmt.Sprintf(" — answered after %s", i.Timing.ResponseTime.Round(time.Minute))
	}
	return ""
}

// when formats t in London time for people; "-" for the zero time.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(dtm.London()).Format("2006-01-02 15:04 MST")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
