package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/store"
	"github.com/dtm-project/dtm/synth"
	"github.com/spf13/cobra"
)

func init() { sourceSubcommands = append(sourceSubcommands, newSimulateCmd) }

func newSimulateCmd(e *env) *cobra.Command {
	var db, practice, start string
	var patients, days int
	var seed uint64
	var speed float64
	var step time.Duration
	cmd := &cobra.Command{
		Use:   "simulate --db URL --practice ODS --days D [--speed X]",
		Short: "Drive simulated practice activity into the source DTM",
		Long: `Simulate a working GP practice (consultations, prescriptions, amendments,
deletions entered in error, registrations with full history, deductions, deaths,
appointments, documents, tasks; quiet nights and weekends) and write its changes
into the practice's journal as a live source system would, recording the source
watermark after every step. See docs/SIMULATION.md for the rates.

The simulator models the practice that "dtm generate" makes with the same
--practice, --patients and --seed: load that first.

--speed 0 (the default) runs as fast as possible; --speed X runs X simulated
seconds per real second (1 is real time). Simulated time starts at --start;
by default at now with --speed, and D days ago without it, so that the
simulated days end now and no record is dated in the future (the target's
validation quarantines future dates).`,
		Example: `  dtm generate --practice A81001 --patients 1000 --seed 1 --out practice
  dtm source load --db sqlite:source.db --practice A81001 practice
  dtm source simulate --db sqlite:source.db --practice A81001 --patients 1000 --seed 1 --days 7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !dtm.ValidODS(practice) {
				return usageError{fmt.Errorf("--practice: %q is not an ODS code", practice)}
			}
			if days < 1 || patients < 1 || speed < 0 {
				return usageError{fmt.Errorf("--days and --patients must be at least 1 and --speed not negative")}
			}
			begin := time.Now().UTC().Truncate(time.Minute)
			if speed == 0 {
				begin = begin.AddDate(0, 0, -days)
			}
			if start != "" {
				t, err := time.Parse(time.RFC3339, start)
				if err != nil {
					return usageError{fmt.Errorf("--start: %w", err)}
				}
				begin = t
			}
			ctx := cmd.Context()
			log := e.logger()
			st, err := store.Open(ctx, db, dtm.SystemClock{}, log)
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := st.Practice(ctx, practice); err != nil {
				return fmt.Errorf("practice %s: %w (load it first with dtm source load)", practice, err)
			}
			sim, err := synth.NewSimulator(synth.Options{Practice: practice, Patients: patients, Seed: seed}, seed, begin)
			if err != nil {
				return err
			}
			feed := &source.Feed{Store: st, Practice: practice, Sim: sim,
				Watermark: func(v time.Time) time.Time { return minTime(v, time.Now()) }}
			wall := time.Now()
			pace := func(ctx context.Context, v time.Time) error {
				log.Info("simulated", "until", v.Format(time.RFC3339), "registered", sim.Registered())
				if speed == 0 {
					return nil
				}
				due := wall.Add(time.Duration(float64(v.Sub(begin)) / speed))
				select {
				case <-time.After(time.Until(due)):
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			stats, err := feed.Run(ctx, begin.Add(time.Duration(days)*24*time.Hour), step, pace)
			fmt.Fprintf(e.stdout, "simulated %d days: %d events, %d applied, %d unchanged\n", days, stats.Events, stats.Applied, stats.Skipped)
			counts := sim.Counts()
			for _, kind := range slices.Sorted(maps.Keys(counts)) {
				fmt.Fprintf(e.stdout, "  %-14s %d\n", kind, counts[kind])
			}
			return err
		},
	}
	cmd.Flags().StringVar(&db, "db", defaultSourceDB, "store: sqlite:PATH or postgres://...")
	cmd.Flags().StringVar(&practice, "practice", "", "ODS code of the practice (required)")
	cmd.Flags().IntVar(&patients, "patients", 1000, "patients the practice was generated with")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed the practice was generated with")
	cmd.Flags().IntVar(&days, "days", 7, "simulated days")
	cmd.Flags().Float64Var(&speed, "speed", 0, "simulated seconds per real second; 0 runs as fast as possible")
	cmd.Flags().DurationVar(&step, "step", time.Hour, "simulated time per batch")
	cmd.Flags().StringVar(&start, "start", "", "simulated start time, RFC 3339 (default: now with --speed, else --days ago)")
	cmd.MarkFlagRequired("practice")
	return cmd
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
