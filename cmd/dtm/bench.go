package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newBenchCmd) }

// benchOptions are the flags of "dtm bench".
type benchOptions struct {
	patients   int
	sizes      []int // practice sizes to measure one after another; [patients] when empty
	changes    []int
	db         string // source store kind: "" or "sqlite" (files in dir), or a postgres:// server
	targetDB   string // target store kind; "" is the kind of db
	sourceOnly bool
	quick      bool
	jsonOut    string
	dir        string

	// The many-practices stage (bench_practices.go), run when practices > 0.
	practices         int
	practicePatients  int
	practicesDB       string
	replicas          int
	practicesValidate bool
	practicesOnly     bool
}

// benchResult is one measured figure beside its budget.
type benchResult struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Budget   string  `json:"budget"`
	Met      *bool   `json:"met,omitempty"` // nil when there is no budget to compare with
	PeakMiB  float64 `json:"peakHeapMiB"`   // peak Go heap while measuring
	PeakRSS  float64 `json:"peakRSSMiB"`    // peak resident set of the whole bench process while measuring
	Patients int     `json:"patients,omitempty"`
	Stores   string  `json:"stores,omitempty"` // "source store → target store"
	Load1    float64 `json:"load1"`            // 1-minute load average when the measure ended
	Note     string  `json:"note,omitempty"`
}

// benchReport is the --json output: the machine, the command and every
// figure, and the figures again by practice size (growth).
type benchReport struct {
	Started   time.Time     `json:"started"`
	Args      []string      `json:"args"`
	GoVersion string        `json:"goVersion"`
	CPUs      int           `json:"cpus"`
	Arch      string        `json:"arch"`
	LoadStart string        `json:"loadAverageStart"`
	LoadEnd   string        `json:"loadAverageEnd"`
	Process   string        `json:"process"`
	Results   []benchResult `json:"results"`
	Growth    []growthRow   `json:"growth,omitempty"`
}

// benchProcessNote says what the memory figures are.
const benchProcessNote = "one process: source, target and the bench's HTTP client share the heap and RSS figures; " +
	"peak RSS is per measure (VmHWM reset before each), peak heap is the Go heap in use sampled every 20 ms"

func newBenchCmd(e *env) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench [--quick] [--patients N | --sizes N,N] [--db postgres://...] [--json FILE] [--practices N [--practices-only]]",
		Short: "Measure dtm against the performance budgets of DESIGN.md",
		Long: `Generate a synthetic practice and measure, on this machine, each step of a
migration against its budget: generation, source ingest, full export from
kick-off to last byte over loopback HTTP (with and without gzip), delta export
of --changes changes, change-to-availability latency (HTTP pushes while a bulk
ingest runs alongside), target pull + validate + load, reconcile (source digest
against target digest), the whole cutover (freeze, final delta pull after a
simulated week, validate, load, reconcile, go/no-go; then rolled back) and peak
memory. Prints a table with each figure beside its budget, and writes JSON
(with the machine and the load average) with --json.

The bench runs in one process: source, target and client share the memory
figures (peak Go heap and peak RSS per measure), so each is an upper bound for
either side.

--sizes 1000,10000 measures each practice size in turn and adds a growth table
(each figure by size): delta cost for a fixed number of changes should not grow
with the practice, nor memory. --source-only measures only the source's stages
(generate, ingest, exports, change latency).

Stores: SQLite files in the working directory by default. --db postgres://HOST/NAME
puts the source on that PostgreSQL server: the bench creates a database
NAME_src_<patients> per size and drops it afterwards (the role needs CREATEDB;
NAME itself is only connected to). --target-db does the same for the target
(NAME_tgt_<patients>); by default the target is of the same kind as --db.

--practices N adds a many-practices stage: one source (SMART auth on) serves N
small generated practices (--practice-patients each) to N targets pulling their
practice at the same time, and reports the aggregate rate, per-pull p50/p99 and
peak memory; it fails unless every target ends equal to the source.
--practices-db postgres://... (an empty database) puts that source on PostgreSQL,
and --practices-replicas R serves it from R replicas behind a round-robin proxy.

Figures are measurements, not pass/fail: the exit code is 0 whatever they are
(but a stage whose result is wrong, such as a reconcile that does not match,
fails). --quick uses a small practice (for CI); record full runs in
docs/BENCHMARKS.md with the machine and the command.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.quick {
				if !cmd.Flags().Changed("patients") {
					o.patients = 100
				}
				if !cmd.Flags().Changed("changes") {
					o.changes = []int{100}
				}
			}
			if o.practicesOnly && o.practices <= 0 {
				return usageError{errors.New("--practices-only needs --practices N")}
			}
			if len(o.sizes) == 0 {
				o.sizes = []int{o.patients}
			}
			for _, n := range append(slices.Clone(o.sizes), o.changes...) {
				if n < 1 {
					return usageError{errors.New("--patients, --sizes and --changes must be at least 1")}
				}
			}
			for _, dsn := range []string{o.db, o.targetDB} {
				if dsn != "" && dsn != "sqlite" && !isPostgresDSN(dsn) {
					return usageError{fmt.Errorf("%q: want sqlite or a postgres:// URL", dsn)}
				}
			}
			return runBench(cmd.Context(), e, o, os.Args[1:])
		},
	}
	cmd.Flags().IntVar(&o.patients, "patients", 2000, "patients in the measured practice")
	cmd.Flags().IntSliceVar(&o.sizes, "sizes", nil, "measure each of these practice sizes (patients) in turn and print a growth table (default: --patients)")
	cmd.Flags().IntSliceVar(&o.changes, "changes", []int{100, 1000}, "changes for the delta export measurements (updates of existing resources spread over the practice)")
	cmd.Flags().StringVar(&o.db, "db", "", "source store: sqlite (files in the working directory) or postgres://HOST/NAME (the bench creates and drops NAME_src_<patients>)")
	cmd.Flags().StringVar(&o.targetDB, "target-db", "", "target store: sqlite or postgres://HOST/NAME (NAME_tgt_<patients>); default the kind of --db")
	cmd.Flags().BoolVar(&o.sourceOnly, "source-only", false, "measure only the source's stages: generate, ingest, full and delta export, change latency")
	cmd.Flags().BoolVar(&o.quick, "quick", false, "a small practice, for CI: 100 patients, 100 changes (unless --patients or --changes say otherwise)")
	cmd.Flags().StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	cmd.Flags().StringVar(&o.dir, "dir", "", "working directory (default: a new temporary directory, removed after)")
	cmd.Flags().IntVar(&o.practices, "practices", 0, "also serve this many small practices from one source to as many targets pulling at once (0: skip)")
	cmd.Flags().IntVar(&o.practicePatients, "practice-patients", 50, "patients in each of the --practices practices")
	cmd.Flags().StringVar(&o.practicesDB, "practices-db", "", "an empty store for the --practices source: sqlite:PATH or postgres://... (default: SQLite in the working directory)")
	cmd.Flags().IntVar(&o.replicas, "practices-replicas", 1, "serve the --practices source from this many replicas behind a round-robin proxy (PostgreSQL only)")
	cmd.Flags().BoolVar(&o.practicesValidate, "practices-validate", false, "validate every resource (UK Core) in the --practices pulls")
	cmd.Flags().BoolVar(&o.practicesOnly, "practices-only", false, "run only the --practices stage")
	return cmd
}

// benchRun holds what the measurements of one practice size share.
type benchRun struct {
	o        benchOptions
	patients int
	log      *slog.Logger
	dir      string
	stores   string // "SQLite → SQLite", for the results

	src       dtm.Store
	tgt       cutoverStore
	url       string
	client    *target.Client // the target's client of the source, after pull
	generated int            // resources in the generated practice
	patientID string         // a patient of the practice, for the resources the bench adds
	cleanup   []func()       // closes stores and drops databases, last first

	results []benchResult
	out     io.Writer      // each result is printed here as it is measured
	served  []atomic.Int64 // requests per replica of the --practices source, with several
}

func runBench(ctx context.Context, e *env, o benchOptions, args []string) error {
	dir := o.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "dtm-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	rep := benchReport{Started: time.Now().UTC(), Args: args, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		Arch: runtime.GOOS + "/" + runtime.GOARCH, LoadStart: loadAverage(), Process: benchProcessNote}
	what := fmt.Sprintf("%v patients, %s", o.sizes, benchStores(o))
	if o.practices > 0 {
		what += fmt.Sprintf("; %d practices of %d patients", o.practices, o.practicePatients)
		if o.practicesOnly {
			what = fmt.Sprintf("%d practices of %d patients", o.practices, o.practicePatients)
		}
	}
	fmt.Fprintf(e.stdout, "dtm bench: %s, %s, %d CPUs, %s, load average %s\n", what, rep.GoVersion, rep.CPUs, rep.Arch, rep.LoadStart)
	if !o.practicesOnly {
		for _, n := range o.sizes {
			b := &benchRun{o: o, patients: n, log: benchLogger(e), dir: filepath.Join(dir, fmt.Sprint(n)),
				stores: benchStores(o), out: e.stdout}
			fmt.Fprintf(e.stdout, "\n%d patients (%s):\n", n, b.stores)
			printBenchHeader(e.stdout)
			err := b.run(ctx)
			b.close()
			if err != nil {
				return fmt.Errorf("%d patients: %w", n, err)
			}
			rep.Results = append(rep.Results, b.results...)
		}
	}
	if o.practices > 0 {
		fmt.Fprintf(e.stdout, "\n%d practices of %d patients:\n", o.practices, o.practicePatients)
		printBenchHeader(e.stdout)
		b := &benchRun{o: o, log: benchLogger(e), dir: filepath.Join(dir, "practices"), out: e.stdout}
		if err := os.MkdirAll(b.dir, 0o755); err != nil {
			return err
		}
		if err := b.manyPractices(ctx); err != nil {
			return err
		}
		rep.Results = append(rep.Results, b.results...)
	}
	rep.LoadEnd = loadAverage()
	if len(o.sizes) > 1 && !o.practicesOnly {
		rep.Growth = growth(rep.Results)
		printGrowth(e, rep.Growth, o.sizes)
	}
	fmt.Fprintf(e.stdout, "\nload average at the end %s; %s\n", rep.LoadEnd, benchProcessNote)
	if o.jsonOut != "" {
		data, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// benchLogger returns the components' logger: silent unless --log-level
// debug asks what they do (the log lines cost time).
func benchLogger(e *env) *slog.Logger {
	if e.logLevel != "debug" {
		return slog.New(slog.DiscardHandler)
	}
	return e.logger()
}

// run measures every stage for one practice size.
func (b *benchRun) run(ctx context.Context) error {
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	steps := []func(context.Context) error{b.generate, b.ingest, b.serve, b.fullExport, b.deltaExports, b.changeLatency}
	if !b.o.sourceOnly {
		steps = append(steps, b.pull, b.reconcile, b.cutover)
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	b.peakMemory()
	return nil
}

// close closes the stores and drops the databases the run created.
func (b *benchRun) close() {
	for i := len(b.cleanup) - 1; i >= 0; i-- {
		b.cleanup[i]()
	}
	b.cleanup = nil
}

// add records a rate (higher is better) or a latency (lower is better)
// against its budget.
func (b *benchRun) add(name string, value float64, unit, budget string, higherBetter bool, limit float64, peak memPeak, note string) {
	r := benchResult{Name: name, Value: value, Unit: unit, Budget: budget, PeakMiB: peak.heapMiB, PeakRSS: peak.rssMiB,
		Patients: b.patients, Stores: b.stores, Load1: load1(), Note: note}
	if limit > 0 {
		met := value >= limit
		if !higherBetter {
			met = value <= limit
		}
		r.Met = &met
	}
	b.results = append(b.results, r)
	printBenchRow(b.out, r)
}

// peakMemory records the largest per-measure peak RSS of the run against
// the memory budget.
func (b *benchRun) peakMemory() {
	var peak memPeak
	stage := ""
	for _, r := range b.results {
		if r.PeakRSS > peak.rssMiB {
			peak.rssMiB, stage = r.PeakRSS, r.Name
		}
		peak.heapMiB = max(peak.heapMiB, r.PeakMiB)
	}
	b.add("peak memory, any stage (RSS)", peak.rssMiB, "MiB", "≤ 512 MB (488 MiB)", false, 512e6/(1<<20), peak,
		fmt.Sprintf("largest in %q; peak Go heap %.0f MiB; source and target in one process", stage, peak.heapMiB))
}

func (b *benchRun) synthOptions() synth.Options {
	return synth.Options{Practice: demoPractice, Patients: b.patients, Seed: 1}
}

func (b *benchRun) generate(ctx context.Context) error {
	n := 0
	elapsed, peak, err := measure(func() error {
		return synth.Generate(ctx, b.synthOptions(), func(typ string, data []byte) error {
			n++
			if b.patientID == "" && typ == "Patient" {
				h, err := fhir.ParseHeader(data)
				b.patientID = h.ID
				return err
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	b.generated = n
	b.add("generate", float64(n)/elapsed.Seconds(), "resources/s", "≥ 100,000", true, 100_000, peak, fmt.Sprintf("%d resources", n))
	return nil
}

func (b *benchRun) ingest(ctx context.Context) error {
	if err := b.openStores(ctx); err != nil {
		return err
	}
	if _, err := b.src.CreatePractice(ctx, dtm.Practice{ODS: demoPractice, CreatedAt: time.Now()}); err != nil {
		return err
	}
	var st source.Stats
	elapsed, peak, err := measure(func() error {
		in := &source.Ingester{Journal: b.src}
		var err error
		st, err = in.LoadGenerated(ctx, demoPractice, b.synthOptions())
		return err
	})
	if err != nil {
		return err
	}
	budget, limit := "≥ 50,000 (SQLite)", 50_000.0
	if isPostgresDSN(b.o.db) {
		budget, limit = sizingBudget+"; ≥ 50,000 is for SQLite", 0
	}
	b.add(fmt.Sprintf("source ingest (%s)", storeKind(b.o.db)), float64(st.Applied)/elapsed.Seconds(), "resources/s", budget, true, limit, peak,
		fmt.Sprintf("%d resources incl. generation", st.Applied))
	return b.src.SetWatermark(ctx, demoPractice, time.Now())
}
