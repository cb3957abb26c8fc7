package main

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	dtm "github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/synth"
)

func init() { subcommands = append(subcommands, newGenerateCmd) }

func newGenerateCmd(e *env) *cobra.Command {
	var (
		opts     synth.Options
		out      string
		gz       bool
		baseTime string
		seed     uint64
	)
	cmd := &cobra.Command{
		Use:   "generate --practice ODS --patients N --seed S --out DIR",
		Short: "Generate a deterministic synthetic GP practice as FHIR R4 NDJSON",
		Long: `generate writes a synthetic English GP practice as FHIR R4 resources shaped
to UK Core, one NDJSON file per resource type (<Type>.ndjson, or
<Type>.ndjson.gz with --gzip), for test environments and benchmarks.

The practice has an Organization with the given ODS code, its team
(Practitioner, PractitionerRole, Schedule), a Location, and N patients with
records spanning decades: consultations, problems, measurements, repeat
medication (dm+d), immunisations, referrals, letters with Binary
attachments, appointments, tasks, audit events and provenance.

The same --practice, --patients, --seed and --base-time always give the
same bytes. All data is synthetic: NHS numbers come from the 999 test
range, telephone numbers from Ofcom's drama ranges.`,
		Example: `  dtm generate --practice A81001 --patients 1000 --seed 1 --out ./practice
  dtm generate --practice A81001 --patients 10000 --seed 1 --out ./big --gzip`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !dtm.ValidODS(opts.Practice) {
				return usageError{fmt.Errorf("--practice %q is not an ODS code (3 to 10 upper-case letters and digits)", opts.Practice)}
			}
			if opts.Patients < 1 {
				return usageError{errors.New("--patients must be at least 1")}
			}
			if out == "" {
				return usageError{errors.New("--out is required")}
			}
			base, err := time.Parse(time.RFC3339, baseTime)
			if err != nil {
				return usageError{fmt.Errorf("--base-time: %w", err)}
			}
			opts.Base, opts.Seed = base, seed
			log := e.logger()
			log.Info("generating practice", "practice", opts.Practice, "patients", opts.Patients, "seed", seed, "out", out)
			st, err := synth.WriteNDJSON(cmd.Context(), opts, out, gz)
			if err != nil {
				return err
			}
			printStats(e, st)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Practice, "practice", "", "ODS code of the practice (for example A81001)")
	f.IntVar(&opts.Patients, "patients", 1000, "number of registered patients")
	f.Uint64Var(&seed, "seed", 1, "random seed; the same seed gives the same bytes")
	f.StringVar(&out, "out", "", "output directory (created if missing; files of the same names are replaced)")
	f.BoolVar(&gz, "gzip", false, "write gzip-compressed files (<Type>.ndjson.gz)")
	f.StringVar(&baseTime, "base-time", synth.DefaultBase.Format(time.RFC3339), "records are dated before this instant (RFC 3339)")
	f.IntVar(&opts.Workers, "workers", 0, "patients generated in parallel (default: number of CPUs)")
	return cmd
}

// printStats writes the per-type counts, total, elapsed time and rate.
func printStats(e *env, st synth.Stats) {
	types := make([]string, 0, len(st.Resources))
	for t := range st.Resources {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		fmt.Fprintf(e.stdout, "%-22s %10d\n", t, st.Resources[t])
	}
	fmt.Fprintf(e.stdout, "%-22s %10d\n", "total", st.Total)
	fmt.Fprintf(e.stdout, "types %d, %.1f MB, %.2fs, %.0f resources/s\n",
		len(types), float64(st.Bytes)/1e6, st.Elapsed.Seconds(), st.Rate())
}
