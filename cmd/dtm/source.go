package main

import (
	"fmt"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/store"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newSourceCmd) }

func newSourceCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "source",
		Short: "Run the source DTM: ingest a practice's records and serve them as FHIR Bulk Data",
	}
	cmd.AddCommand(newSourceLoadCmd(e), newSourceServeCmd(e))
	for _, add := range sourceSubcommands {
		cmd.AddCommand(add(e))
	}
	return cmd
}

// sourceSubcommands lists constructors of further "dtm source" subcommands;
// their files append to it in init functions (for example "clients").
var sourceSubcommands []func(*env) *cobra.Command

const defaultSourceDB = "sqlite:dtm-source.db"

func newSourceLoadCmd(e *env) *cobra.Command {
	var db, practice, name string
	var batch int
	cmd := &cobra.Command{
		Use:   "load --db URL --practice ODS PATH...",
		Short: "Load NDJSON files, FHIR Bundles or directories of them into the source DTM",
		Long: `Load resources into a practice's journal. Each PATH may be an NDJSON file
(.ndjson: one resource per line, each an upsert), a FHIR Bundle (.json) of type
batch, transaction or collection (PUT and POST upsert, DELETE removes; urn:uuid
references are rewritten to Type/id), a single resource (.json), any of those
gzip-compressed (.gz), or a directory of them (loaded recursively, in name order).

Loading is streaming: memory does not grow with file size. Resources are applied
in atomic batches; a resource identical to the one held is skipped, so loading
the same files twice changes nothing. Bad input stops the load with the file and
line; batches before it stay committed and the batch holding it is not.

The practice is registered if it is not yet known.`,
		Example: `  dtm source load --db sqlite:source.db --practice A81001 ./practice
  dtm source load --db postgres://dtm@db/dtm --practice A81001 changes.ndjson.gz`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !dtm.ValidODS(practice) {
				return usageError{fmt.Errorf("--practice: %q is not an ODS code (3 to 10 upper-case letters and digits)", practice)}
			}
			ctx := cmd.Context()
			log := e.logger()
			st, err := store.Open(ctx, db, dtm.SystemClock{}, log)
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := st.CreatePractice(ctx, dtm.Practice{ODS: practice, Name: name, CreatedAt: time.Now()}); err != nil {
				return fmt.Errorf("register practice: %w", err)
			}
			in := &source.Ingester{Journal: st, Logger: log, BatchSize: batch}
			start := time.Now()
			stats, err := in.LoadPaths(ctx, practice, args)
			elapsed := time.Since(start)
			fmt.Fprintf(e.stdout, "files %d, read %d, applied %d, unchanged %d in %s (%.0f resources/s)\n",
				stats.Files, stats.Read, stats.Applied, stats.Skipped, elapsed.Round(time.Millisecond),
				float64(stats.Read)/max(elapsed.Seconds(), 1e-9))
			return err
		},
	}
	cmd.Flags().StringVar(&db, "db", defaultSourceDB, "store: sqlite:PATH or postgres://...")
	cmd.Flags().StringVar(&practice, "practice", "", "ODS code of the practice (required)")
	cmd.Flags().StringVar(&name, "name", "", "practice name, when registering it")
	cmd.Flags().IntVar(&batch, "batch", source.DefaultBatchSize, "resources per atomic batch")
	cmd.MarkFlagRequired("practice")
	return cmd
}
