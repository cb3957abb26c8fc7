package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/cutover"
	"github.com/dtm-project/dtm/store"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/ukcore"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { subcommands = append(subcommands, newCutoverCmd) }

func newCutoverCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cutover",
		Short: "Plan, confirm, rehearse and run a practice's weekend cutover",
		Long: `The weekend cutover (A4): the practice stops on the source system at 17:00 on a
Friday and works on the target system at 08:00 on the Monday (Europe/London).

  plan       record the plan: practice, suppliers, source, the cutover Friday
  readiness  assess readiness (T6) from recorded facts; exit 3 when not ready
  confirm    record a signed confirmation or supplier statement
  rehearse   run the runbook without freezing the source, to measure it
  run        run the cutover: freeze, final pull, validate, load, reconcile, go/no-go
  decide     record the go/no-go decision: go-live, or rollback (unfreeze)
  status     the plan, the confirmations and a run's timeline

Everything is recorded in the target store (--db). See docs/CUTOVER.md.`,
	}
	cmd.AddCommand(newCutoverPlanCmd(e), newCutoverReadinessCmd(e), newCutoverConfirmCmd(e),
		newCutoverRunCmd(e, dtm.RunRehearsal), newCutoverRunCmd(e, dtm.RunCutover), newCutoverDecideCmd(e),
		newCutoverStatusCmd(e))
	return cmd
}

// cutoverStore is what the cutover commands need of the target store.
type cutoverStore interface {
	dtm.Store
	dtm.TargetState
	dtm.Cutovers
}

// openCutoverStore opens the target store named by dsn.
func openCutoverStore(ctx context.Context, dsn string, log *slog.Logger) (cutoverStore, error) {
	st, err := store.Open(ctx, dsn, nil, log)
	if err != nil {
		return nil, err
	}
	cs, ok := st.(cutoverStore)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("store %s cannot hold cutover records", store.Redact(dsn))
	}
	return cs, nil
}

// newCutoverService returns the cutover service over st.
func newCutoverService(st cutoverStore, log *slog.Logger, days int) *cutover.Service {
	return &cutover.Service{Store: st, State: st, Clock: dtm.SystemClock{}, Logger: log, Options: cutover.Options{Days: days}}
}

// openSourceStore opens the source store named by --source-db, when given,
// for the data issue log (which the source keeps) and its audit log. It
// returns nil and a no-op closer for "".
func openSourceStore(ctx context.Context, dsn string, log *slog.Logger) (dtm.Store, func(), error) {
	if dsn == "" {
		return nil, func() {}, nil
	}
	src, err := store.Open(ctx, dsn, nil, log)
	if err != nil {
		return nil, nil, fmt.Errorf("--source-db: %w", err)
	}
	return src, func() { src.Close() }, nil
}

// openCutoverService opens the target store at db and, with --source-db,
// the source store, and returns the cutover service over them (days: the
// readiness period) with a func that closes both. The service reads the
// practice's data issues from the source store when given, or else over
// the source's API (sourceIssues); the target's own store holds none.
func openCutoverService(ctx context.Context, e *env, db, sourceDB string, issues issuesOptions, practice string, days int) (*cutover.Service, func(), error) {
	log := e.logger()
	st, err := openCutoverStore(ctx, db, log)
	if err != nil {
		return nil, nil, err
	}
	src, closeSrc, err := openSourceStore(ctx, sourceDB, log)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	svc := newCutoverService(st, log, days)
	planSource := ""
	if plan, err := cutover.ActivePlan(ctx, st, practice); err == nil {
		planSource = plan.SourceURL
	}
	if il := sourceIssues(ctx, e, issues, src, practice, planSource); il != nil {
		svc.Issues = il
	}
	return svc, func() { closeSrc(); st.Close() }, nil
}

const sourceDBUsage = "the source store, when reachable from here (test environments): its data issue log, instead of the source's API"

// addIssueSourceFlags registers --source and the credentials used to read
// the data issue log over the source's API.
func addIssueSourceFlags(fs *pflag.FlagSet, o *issuesOptions) {
	fs.StringVar(&o.source, "source", "", "the source DTM's base URL, for its data issue log (default: the plan's)")
	o.addAccessFlags(fs)
}

// cutoverBy names the operator: the OS user.
func cutoverBy() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return ""
}

func checkCutoverPractice(ods string) error {
	if !dtm.ValidODS(ods) {
		return usageError{fmt.Errorf("--practice %q is not an ODS code", ods)}
	}
	return nil
}

func newCutoverPlanCmd(e *env) *cobra.Command {
	var db string
	var req cutover.PlanRequest
	cmd := &cobra.Command{
		Use:   "plan --db URL --practice ODS --source-supplier NAME --target-supplier NAME --source URL --date YYYY-MM-DD",
		Short: "Record the migration plan and its cutover window",
		Long: `Record the practice's migration plan. The date is the cutover Friday: the window
runs from 17:00 that Friday to 08:00 on the Monday, Europe/London, as absolute
instants (63 hours; 64 when the clocks go back that weekend, 62 when they go
forward). The target must confirm readiness by 17:00 on the Friday 14 days
before (T6).

Refused: a date that is not a Friday, a date in the past, or one whose
readiness deadline has already passed (the earliest possible date is named).
Planning the same date again changes nothing; --replace cancels a plan for
another date.`,
		Example: `  dtm cutover plan --db sqlite:target.db --practice A81001 --source-supplier "Old Systems Ltd" \
      --target-supplier "New Systems plc" --source https://dtm.sss.example --date 2026-10-23`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkCutoverPractice(req.Practice); err != nil {
				return err
			}
			ctx := cmd.Context()
			log := e.logger()
			st, err := openCutoverStore(ctx, db, log)
			if err != nil {
				return err
			}
			defer st.Close()
			p, err := newCutoverService(st, log, 0).CreatePlan(ctx, req)
			if err != nil {
				return err
			}
			printCutoverPlan(e.stdout, p)
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", defaultTargetDB, "target store: sqlite:PATH or postgres://...")
	cmd.Flags().StringVar(&req.Practice, "practice", "", "ODS code of the practice")
	cmd.Flags().StringVar(&req.SourceSupplier, "source-supplier", "", "the source solution supplier (SSS)")
	cmd.Flags().StringVar(&req.TargetSupplier, "target-supplier", "", "the target solution supplier (TSS)")
	cmd.Flags().StringVar(&req.SourceURL, "source", "", "the source DTM's base URL")
	cmd.Flags().StringVar(&req.Date, "date", "", "the cutover Friday, YYYY-MM-DD")
	cmd.Flags().StringVar(&req.By, "by", cutoverBy(), "who records the plan")
	cmd.Flags().BoolVar(&req.Replace, "replace", false, "cancel the practice's active plan for another date")
	return cmd
}

func printCutoverPlan(w io.Writer, p dtm.Plan) {
	fmt.Fprintf(w, "plan %s: %s\n", p.ID, p.Status)
	fmt.Fprintf(w, "  practice        %s, from %s to %s\n", p.Practice, p.SourceSupplier, p.TargetSupplier)
	fmt.Fprintf(w, "  source          %s\n", p.SourceURL)
	fmt.Fprintf(w, "  window          %s → %s (%.0f h)\n", cutover.Local(p.WindowStart), cutover.Local(p.GoLive), p.Window().Hours())
	fmt.Fprintf(w, "                  %s → %s UTC\n", p.WindowStart.UTC().Format(time.RFC3339), p.GoLive.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  confirm (T6) by %s\n", cutover.Local(p.ReadinessDeadline))
	fmt.Fprintf(w, "  recorded by     %s at %s\n", p.CreatedBy, cutover.Local(p.CreatedAt))
}

func newCutoverReadinessCmd(e *env) *cobra.Command {
	var db, practice, sourceDB string
	var issues issuesOptions
	var days int
	var asJSON bool
	var maxRate float64
	cmd := &cobra.Command{
		Use:   "readiness --db URL --practice ODS",
		Short: "Assess readiness for the weekend cutover (T6) from recorded facts",
		Long: `Assess, from what the target recorded rather than from assertions, whether the
practice is ready for its planned cutover: authenticated pulls work, the DTM stayed
within 12 h (and 6 h) of the live system at every pull, pulls happened weekly (T2)
and were consumed within 6 h (T1), the validation error rate, open data issues, the
last reconciliation, and whether measured rates predict the final cutover finishes
well inside the window. Each check shows pass, warn or fail, its evidence and
whether it blocks the confirmation.

Exit status 3 when a check blocks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkCutoverPractice(practice); err != nil {
				return err
			}
			ctx := cmd.Context()
			svc, closeAll, err := openCutoverService(ctx, e, db, sourceDB, issues, practice, days)
			if err != nil {
				return err
			}
			defer closeAll()
			svc.Options.MaxErrorRate = maxRate
			rep, err := svc.Readiness(ctx, practice)
			if err != nil {
				return err
			}
			if asJSON {
				e.stdout.Write(append(rep.JSON(), '\n'))
			} else if err := rep.WriteText(e.stdout); err != nil {
				return err
			}
			if !rep.Ready {
				return errFindings
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", defaultTargetDB, "target store: sqlite:PATH or postgres://...")
	cmd.Flags().StringVar(&practice, "practice", "", "ODS code of the practice")
	cmd.Flags().IntVar(&days, "days", 28, "assess the last N days")
	cmd.Flags().Float64Var(&maxRate, "max-error-rate", 0.01, "share of received resources that may be quarantined")
	cmd.Flags().BoolVar(&asJSON, "json", false, "write the report as JSON")
	cmd.Flags().StringVar(&sourceDB, "source-db", "", sourceDBUsage)
	addIssueSourceFlags(cmd.Flags(), &issues)
	return cmd
}

func newCutoverConfirmCmd(e *env) *cobra.Command {
	var db, sourceDB string
	var issues issuesOptions
	var req cutover.ConfirmRequest
	cmd := &cobra.Command{
		Use:   "confirm --db URL --practice ODS --role target|source-statement|target-statement --name NAME --position ROLE --organisation ORG",
		Short: "Record the signed readiness confirmation (T6) or a supplier's statement (A4)",
		Long: `Record a signed statement against the practice's plan: the target's confirmation
that the data and the DTM are fit for a weekend cutover (--role target, T6), or a
supplier's statement that the weekend cutover can be performed (--role
source-statement or target-statement, A4). It records who signed, their role and
organisation, when, the statement text (a standard wording unless --statement is
given), the readiness report it was made on, and a SHA-256 seal over all of it.

Refused later than 17:00 on the Friday 14 days before the cutover date, or while a
readiness check blocks (the report is printed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkCutoverPractice(req.Practice); err != nil {
				return err
			}
			ctx := cmd.Context()
			svc, closeAll, err := openCutoverService(ctx, e, db, sourceDB, issues, req.Practice, 0)
			if err != nil {
				return err
			}
			defer closeAll()
			c, rep, err := svc.Confirm(ctx, req)
			if err != nil {
				if len(rep.Checks) > 0 && !rep.Ready {
					rep.WriteText(e.stderr)
				}
				return err
			}
			fmt.Fprintf(e.stdout, "confirmation %s recorded\n  %s, %s, %s at %s\n  %q\n  seal %s\n", c.ID, c.Name, c.Role,
				c.Organisation, cutover.Local(c.At), c.Statement, c.Digest)
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", defaultTargetDB, "target store: sqlite:PATH or postgres://...")
	cmd.Flags().StringVar(&req.Practice, "practice", "", "ODS code of the practice")
	cmd.Flags().StringVar(&req.Kind, "role", dtm.ConfirmReadiness, "what is signed: target (T6 readiness), source-statement or target-statement")
	cmd.Flags().StringVar(&req.Name, "name", "", "the person signing")
	cmd.Flags().StringVar(&req.Role, "position", "", "their role, e.g. \"Migration lead\"")
	cmd.Flags().StringVar(&req.Organisation, "organisation", "", "the organisation they sign for")
	cmd.Flags().StringVar(&req.Statement, "statement", "", "the statement text (default: the standard wording)")
	cmd.Flags().StringVar(&sourceDB, "source-db", "", sourceDBUsage)
	addIssueSourceFlags(cmd.Flags(), &issues)
	return cmd
}

// cutoverRunOptions are the flags of rehearse, run and decide.
type cutoverRunOptions struct {
	pull     targetPullOptions
	sourceDB string
	by       string
}

func newCutoverRunCmd(e *env, mode string) *cobra.Command {
	var o cutoverRunOptions
	use, short, long := "run", "Run the weekend cutover: freeze, final pull, validate, load, reconcile, go/no-go", `Run the cutover runbook of the practice's plan, from 17:00 on the cutover Friday:

  freeze     the source stops accepting changes and publishes its final watermark
  pull       the final delta pull, validated and loaded
  validate   quarantine and validation findings of that pull
  load       counts reconcile and the checkpoint advanced
  reconcile  source and target compared exactly, quarantine accounted for
  go-no-go   the automatic rules (confirmations, freeze, reconcile, window)

then it waits for "dtm cutover decide". Every step is timed, attributed (--by) and
saved when it starts and ends: if the command is killed or loses its connection,
run it again and it resumes where it stopped.

Reconciliation compares digest trees with the source over its API (as "dtm target
reconcile" does); in a test environment where the source store is reachable,
--source-db compares the two journals directly instead.`
	if mode == dtm.RunRehearsal {
		use, short, long = "rehearse", "Rehearse the cutover: every step without freezing the source, timed", `Run the same runbook as "dtm cutover run" without freezing the source, going live
or deciding, to measure every step. The timings feed the readiness prediction and
the evidence report (A4). Rehearse as often as needed before the cutover.`
	}
	cmd := &cobra.Command{
		Use:   use + " --db URL --practice ODS [--source-db URL]",
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCutover(cmd.Context(), e, o, func(ctx context.Context, r *cutover.Runner, plan dtm.Plan) (dtm.CutoverRun, error) {
				return r.Start(ctx, plan.ID, mode)
			})
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (o *cutoverRunOptions) addFlags(cmd *cobra.Command) {
	o.pull.addFlags(cmd.Flags())
	cmd.Flags().Lookup("source").Usage = "the source DTM's base URL (default: the plan's)"
	cmd.Flags().StringVar(&o.sourceDB, "source-db", "", "the source store, when reachable from here (test environments): reconcile journal to journal instead of over the API")
	cmd.Flags().StringVar(&o.by, "by", cutoverBy(), "who runs the steps (recorded with every step)")
}

func newCutoverDecideCmd(e *env) *cobra.Command {
	var o cutoverRunOptions
	var d dtm.Decision
	cmd := &cobra.Command{
		Use:   "decide --db URL --practice ODS --decision go|no-go --by NAME --reason TEXT",
		Short: "Record the go/no-go decision: go-live, or rollback (unfreeze the source)",
		Long: `Record a person's go/no-go decision on the cutover run and finish it: go-live on
go, rollback (the source is unfrozen and keeps the practice) on no-go. Go is
accepted only when every automatic rule passed; no-go at any point of an
unfinished run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d.By = o.by
			return runCutover(cmd.Context(), e, o, func(ctx context.Context, r *cutover.Runner, plan dtm.Plan) (dtm.CutoverRun, error) {
				run, err := cutoverLatestRun(ctx, r.Store, plan, dtm.RunCutover)
				if err != nil {
					return dtm.CutoverRun{}, err
				}
				return r.Decide(ctx, run.ID, d)
			})
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&d.Decision, "decision", "", "go or no-go")
	cmd.Flags().StringVar(&d.Role, "position", "", "the decider's role")
	cmd.Flags().StringVar(&d.Reason, "reason", "", "why")
	return cmd
}

// cutoverLatestRun returns the plan's newest run of mode.
func cutoverLatestRun(ctx context.Context, st dtm.Cutovers, plan dtm.Plan, mode string) (dtm.CutoverRun, error) {
	runs, err := st.CutoverRuns(ctx, plan.ID)
	if err != nil {
		return dtm.CutoverRun{}, err
	}
	for _, r := range runs {
		if mode == "" || r.Mode == mode {
			return r, nil
		}
	}
	return dtm.CutoverRun{}, dtm.Errorf(dtm.ENotFound, "plan %s has no %s run", plan.ID, cutoverOr(mode, "cutover or rehearsal"))
}

func cutoverOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// runCutover opens the stores, builds the runner and calls do, then prints
// the run's timeline.
func runCutover(ctx context.Context, e *env, o cutoverRunOptions, do func(context.Context, *cutover.Runner, dtm.Plan) (dtm.CutoverRun, error)) error {
	if err := checkCutoverPractice(o.pull.practice); err != nil {
		return err
	}
	if strings.TrimSpace(o.by) == "" {
		return usageError{errors.New("--by is required: every step records who ran it")}
	}
	log := e.logger()
	st, err := openCutoverStore(ctx, o.pull.db, log)
	if err != nil {
		return err
	}
	defer st.Close()
	plan, err := cutover.ActivePlan(ctx, st, o.pull.practice)
	if err != nil {
		return err
	}
	if o.pull.source == "" {
		o.pull.source = plan.SourceURL
	}
	r, closeCutoverRunner, err := newCutoverRunner(ctx, e, o, st, log)
	if err != nil {
		return err
	}
	defer closeCutoverRunner()
	run, err := do(ctx, r, plan)
	if run.ID != "" {
		events, _ := st.RunEvents(ctx, run.ID)
		cutover.WriteTimeline(e.stdout, run, events)
		if run.State == dtm.RunAwaitingDecision {
			fmt.Fprintf(e.stdout, "\nAwaiting the go/no-go decision: dtm cutover decide --practice %s --decision go|no-go --by NAME --reason TEXT\n", plan.Practice)
		}
	}
	if err != nil {
		return err
	}
	if gs, _ := run.Step(cutover.StepGoNoGo); gs.Facts["automatic"] == dtm.DecisionNoGo || run.State == dtm.RunRolledBack {
		return errFindings
	}
	return nil
}

// newCutoverRunner builds the runner: the puller (with a phase timer), the
// control-plane freezer and, with --source-db, the journal reconciler.
func newCutoverRunner(ctx context.Context, e *env, o cutoverRunOptions, st cutoverStore, log *slog.Logger) (*cutover.Runner, func(), error) {
	if err := o.pull.check(); err != nil {
		return nil, nil, err
	}
	hc, err := targetHTTPClient(o.pull.caFile)
	if err != nil {
		return nil, nil, err
	}
	copts := target.ClientOptions{HTTP: hc, Logger: log, MaxRetryAfter: o.pull.maxRetryAfter,
		MinBackoff: o.pull.minBack, MaxBackoff: o.pull.maxBack}
	freezer := &cutover.HTTPFreezer{Source: o.pull.source, HTTP: hc}
	if o.pull.clientID != "" {
		creds, err := clientCredentials(ctx, o.pull, hc)
		if err != nil {
			return nil, nil, err
		}
		copts.Auth, freezer.Auth = creds, creds
	}
	client, err := target.NewClient(o.pull.source, copts)
	if err != nil {
		return nil, nil, usageError{err}
	}
	sinks, err := newSinks(o.pull, log) // the final pull feeds the --sink systems too
	if err != nil {
		return nil, nil, err
	}
	phases := &cutover.PhaseTimer{Clock: dtm.SystemClock{}}
	cfg := target.Config{Store: st, State: st, Client: client, WorkDir: o.pull.workDir, Logger: log,
		Parallel: o.pull.parallel, Types: o.pull.types, MaxAttachmentBytes: o.pull.maxAttachment, Progress: phases,
		Sinks: sinks}
	if cfg.WorkDir == "" {
		cfg.WorkDir = defaultWorkDir(o.pull.db)
	}
	if !o.pull.noValidate {
		v, err := ukcore.NewValidator(ukcore.Options{PracticeODS: o.pull.practice})
		if err != nil {
			return nil, nil, err
		}
		cfg.Validator = v
	}
	puller, err := target.NewPuller(cfg)
	if err != nil {
		return nil, nil, err
	}
	r := &cutover.Runner{Store: st, State: st, Puller: puller, Freezer: freezer, Phases: phases,
		Clock: dtm.SystemClock{}, Logger: log, By: o.by,
		Reconciler: digestReconciler(client, st, st, dtm.SystemClock{}, filepath.Join(cfg.WorkDir, "digest-tree"))}
	closer := func() {}
	if o.sourceDB != "" {
		src, err := store.Open(ctx, o.sourceDB, nil, log)
		if err != nil {
			return nil, nil, fmt.Errorf("--source-db: %w", err)
		}
		closer = func() { src.Close() }
		r.Reconciler = cutover.JournalReconciler{Source: src, Target: st, State: st, Clock: dtm.SystemClock{}}
	}
	return r, closer, nil
}

func newCutoverStatusCmd(e *env) *cobra.Command {
	var db, practice, runID string
	cmd := &cobra.Command{
		Use:   "status --db URL --practice ODS [--run ID]",
		Short: "Show the plan, the confirmations and a run's timeline with step durations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkCutoverPractice(practice); err != nil {
				return err
			}
			ctx := cmd.Context()
			log := e.logger()
			st, err := openCutoverStore(ctx, db, log)
			if err != nil {
				return err
			}
			defer st.Close()
			plan, err := cutover.ActivePlan(ctx, st, practice)
			if err != nil {
				return err
			}
			printCutoverPlan(e.stdout, plan)
			confs, err := st.Confirmations(ctx, plan.ID)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "\nconfirmations:")
			if len(confs) == 0 {
				fmt.Fprintln(e.stdout, "  none")
			}
			for _, c := range confs {
				seal := "seal ok"
				if !cutover.Verify(c) {
					seal = "SEAL BROKEN"
				}
				fmt.Fprintf(e.stdout, "  %-17s %s, %s, %s at %s (%s)\n", c.Kind, c.Name, c.Role, c.Organisation, cutover.Local(c.At), seal)
			}
			runs, err := st.CutoverRuns(ctx, plan.ID)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "\nruns:")
			if len(runs) == 0 {
				fmt.Fprintln(e.stdout, "  none")
				return nil
			}
			for _, r := range runs {
				fmt.Fprintf(e.stdout, "  %-32s %-10s %-18s started %s by %s, elapsed %s\n", r.ID, r.Mode, r.State,
					cutover.Local(r.StartedAt), r.StartedBy, cutover.Elapsed(r).Round(time.Millisecond))
			}
			run := runs[0]
			if runID != "" {
				if run, err = st.CutoverRun(ctx, runID); err != nil {
					return err
				}
			}
			events, err := st.RunEvents(ctx, run.ID)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout)
			return cutover.WriteTimeline(e.stdout, run, events)
		},
	}
	cmd.Flags().StringVar(&db, "db", defaultTargetDB, "target store: sqlite:PATH or postgres://...")
	cmd.Flags().StringVar(&practice, "practice", "", "ODS code of the practice")
	cmd.Flags().StringVar(&runID, "run", "", "the run to show (default: the newest)")
	return cmd
}
