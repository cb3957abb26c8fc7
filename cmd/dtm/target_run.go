package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dtm-project/dtm/target"
	"github.com/spf13/cobra"
)

func newTargetRunCmd(e *env) *cobra.Command {
	var o targetPullOptions
	var s target.Schedule
	var tz string
	cmd := &cobra.Command{
		Use:   "run --source URL --practice ODS --db URL [--every 24h] [--at HH:MM] [--min-interval 24h]",
		Short: "Pull a practice on a schedule until stopped (at least weekly, never more often than agreed)",
		Long: `Run pulls the practice now if it was never pulled (the initial extract) or a pull is
unfinished, then on schedule: every --every (at most 168h, requirement T2), at the
local time --at in --tz (Europe/London by default; DST-correct), and never sooner
than --min-interval after the previous retrieval started (the frequency agreed with
the source, requirement S7). On the spring DST weekend a daily --at pull is
therefore an hour late rather than 23 hours after the previous one.

After a failed pull the next attempt waits 5 minutes, doubling to an hour, or the
source's Retry-After when longer (its agreed retrievals used up); an unfinished
export is resumed, otherwise the schedule still holds. Stops on SIGINT or SIGTERM;
a pull in progress is left to resume on the next start.

Every applied export is also delivered to each --sink (ndjson=DIR or fhir=URL; see
"dtm target pull --help") before the checkpoint advances. Progress is logged, one
line per phase of each pull (--progress always draws bars instead).`,
		Example: `  dtm target run --source https://dtm.sss.example --practice A81001 --db sqlite:target.db \
      --client-id tss-b --key tss-key.pem --at 02:00
  dtm target run --source https://dtm.sss.example --practice A81001 --db sqlite:target.db \
      --client-id tss-b --key tss-key.pem --sink fhir=https://fhir.tss.example/R4 --sink-token-file tss-fhir.token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			loc, err := time.LoadLocation(tz)
			if err != nil {
				return usageError{fmt.Errorf("--tz: %w", err)}
			}
			s.Location = loc
			if err := s.Validate(); err != nil {
				return usageError{err}
			}
			return runTargetSchedule(cmd.Context(), e, o, s)
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().DurationVar(&s.Every, "every", 24*time.Hour, "interval between pulls (at most 168h)")
	cmd.Flags().StringVar(&s.At, "at", "", "local time of day HH:MM to pull at (in --tz)")
	cmd.Flags().DurationVar(&s.MinInterval, "min-interval", 24*time.Hour, "never start retrievals closer than this (as agreed with the source)")
	cmd.Flags().StringVar(&tz, "tz", "Europe/London", "time zone of --at")
	return cmd
}

// runTargetSchedule runs scheduled pulls until ctx is done, printing each
// pull's summary.
func runTargetSchedule(ctx context.Context, e *env, o targetPullOptions, s target.Schedule) error {
	log := e.logger()
	st, state, err := openTarget(ctx, o.db, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if o.progress == "auto" {
		o.progress = "never" // a long-running service logs instead
	}
	p, err := newPuller(ctx, e, o, st, state, log)
	if err != nil {
		return err
	}
	err = p.RunSchedule(ctx, o.practice, s, func(res target.PullResult, err error) {
		if err == nil {
			printPull(e.stdout, res)
			if _, _, rerr := p.ReportIssues(ctx, o.practice); rerr != nil {
				log.Warn("reporting data issues to the source", "err", rerr)
			}
		}
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
