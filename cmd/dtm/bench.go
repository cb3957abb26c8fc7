package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/synth"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newBenchCmd) }

// benchOptions are the flags of "dtm bench".
type benchOptions struct {
	patients int
	changes  []int
	quick    bool
	jsonOut  string
	dir      string

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
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	Budget  string  `json:"budget"`
	Met     *bool   `json:"met,omitempty"` // nil when there is no budget to compare with
	PeakMiB float64 `json:"peakHeapMiB"`   // peak Go heap while measuring
	Note    string  `json:"note,omitempty"`
}

func newBenchCmd(e *env) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench [--quick] [--patients N] [--json FILE] [--practices N [--practices-only]]",
		Short: "Measure dtm against the performance budgets of DESIGN.md",
		Long: `Generate a synthetic practice and measure, on this machine, each step of a
migration against its budget: generation, source ingest (SQLite), full export
from kick-off to last byte over loopback HTTP (with and without gzip), delta
export latency, change-to-availability latency, and target pull + validate +
load. Prints a table with each figure beside its budget, and writes JSON with
--json.

--practices N adds a many-practices stage: one source (SMART auth on) serves N
small generated practices (--practice-patients each) to N targets pulling their
practice at the same time, and reports the aggregate rate, per-pull p50/p99 and
peak memory; it fails unless every target ends equal to the source.
--practices-db postgres://... (an empty database) puts that source on PostgreSQL,
and --practices-replicas R serves it from R replicas behind a round-robin proxy. Figures are measurements, not pass/fail: the exit code is 0 whatever
they are. --quick uses a small practice (for CI); record full runs in
docs/BENCHMARKS.md with the machine and the command.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.quick {
				o.patients, o.changes = 100, []int{100}
			}
			if o.practicesOnly && o.practices <= 0 {
				return usageError{errors.New("--practices-only needs --practices N")}
			}
			return runBench(cmd.Context(), e, o)
		},
	}
	cmd.Flags().IntVar(&o.patients, "patients", 2000, "patients in the measured practice")
	cmd.Flags().IntSliceVar(&o.changes, "changes", []int{100, 1000}, "changes for the delta export measurements")
	cmd.Flags().BoolVar(&o.quick, "quick", false, "a small practice, for CI: 100 patients, 100 changes")
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

// benchRun holds what the measurements share.
type benchRun struct {
	o       benchOptions
	log     *slog.Logger
	dir     string
	src     *sqlite.DB
	url     string
	results []benchResult
	served  []atomic.Int64 // requests per replica of the --practices source, with several
}

func runBench(ctx context.Context, e *env, o benchOptions) error {
	dir := o.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "dtm-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	b := &benchRun{o: o, log: slog.New(slog.DiscardHandler), dir: dir}
	what := fmt.Sprintf("%d patients", o.patients)
	if o.practices > 0 {
		what += fmt.Sprintf("; %d practices of %d patients", o.practices, o.practicePatients)
		if o.practicesOnly {
			what = fmt.Sprintf("%d practices of %d patients", o.practices, o.practicePatients)
		}
	}
	fmt.Fprintf(e.stdout, "dtm bench: %s, %s, %d CPUs, %s\n", what, runtime.Version(), runtime.NumCPU(), runtime.GOARCH)
	steps := []func(context.Context) error{b.generate, b.ingest, b.serve, b.fullExport, b.deltaExports, b.changeLatency, b.pull}
	if o.practicesOnly {
		steps = nil
	}
	steps = append(steps, b.manyPractices)
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	if b.src != nil {
		b.src.Close()
	}
	printBench(e, b.results)
	if o.jsonOut != "" {
		data, _ := json.MarshalIndent(b.results, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// measure runs fn, sampling the peak Go heap meanwhile, and returns the
// elapsed time and the peak in MiB.
func measure(fn func() error) (time.Duration, float64, error) {
	done := make(chan struct{})
	peak := make(chan uint64, 1)
	go func() {
		var ms runtime.MemStats
		var max uint64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			max = maxU(max, ms.HeapInuse)
			select {
			case <-done:
				peak <- max
				return
			case <-t.C:
			}
		}
	}()
	runtime.GC()
	start := time.Now()
	err := fn()
	elapsed := time.Since(start)
	close(done)
	return elapsed, float64(<-peak) / (1 << 20), err
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// add records a rate (higher is better) or a latency (lower is better)
// against its budget.
func (b *benchRun) add(name string, value float64, unit, budget string, higherBetter bool, limit, peak float64, note string) {
	r := benchResult{Name: name, Value: value, Unit: unit, Budget: budget, PeakMiB: peak, Note: note}
	if limit > 0 {
		met := value >= limit
		if !higherBetter {
			met = value <= limit
		}
		r.Met = &met
	}
	b.results = append(b.results, r)
}

func (b *benchRun) synthOptions() synth.Options {
	return synth.Options{Practice: demoPractice, Patients: b.o.patients, Seed: 1}
}

func (b *benchRun) generate(ctx context.Context) error {
	n := 0
	elapsed, peak, err := measure(func() error {
		return synth.Generate(ctx, b.synthOptions(), func(string, []byte) error { n++; return nil })
	})
	if err != nil {
		return err
	}
	b.add("generate", float64(n)/elapsed.Seconds(), "resources/s", "≥ 100,000", true, 100_000, peak, fmt.Sprintf("%d resources", n))
	return nil
}

func (b *benchRun) ingest(ctx context.Context) error {
	var err error
	b.src, err = sqlite.Open(ctx, filepath.Join(b.dir, "source.db"), sqlite.Options{Logger: b.log})
	if err != nil {
		return err
	}
	if _, err := b.src.CreatePractice(ctx, dtm.Practice{ODS: demoPractice, CreatedAt: time.Now()}); err != nil {
		return err
	}
	var st source.Stats
	elapsed, peak, err := measure(func() error {
		in := &source.Ingester{Journal: b.src}
		st, err = in.LoadGenerated(ctx, demoPractice, b.synthOptions())
		return err
	})
	if err != nil {
		return err
	}
	b.add("source ingest (SQLite)", float64(st.Applied)/elapsed.Seconds(), "resources/s", "≥ 50,000", true, 50_000, peak,
		fmt.Sprintf("%d resources incl. generation", st.Applied))
	return b.src.SetWatermark(ctx, demoPractice, time.Now())
}
