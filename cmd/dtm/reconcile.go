package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/dtm-project/dtm/target"
	"github.com/spf13/cobra"
)

func init() { targetSubcommands = append(targetSubcommands, newTargetReconcileCmd) }

func newTargetReconcileCmd(e *env) *cobra.Command {
	o := &issuesOptions{}
	var db, out, at, tree string
	var maxBuckets int
	cmd := &cobra.Command{
		Use:   "reconcile --source URL --practice ODS --db URL [--out DIR]",
		Short: "Prove the target holds exactly what the source held, or name what differs",
		Long: `Reconcile compares the target store with the source at one snapshot: by default the
transactionTime of the last export applied (the checkpoint), or --at. Both sides
compute counts per type and a digest tree (one SHA-256 per patient compartment over
its resources' type, id and content hash, resources in no compartment in their own
bucket, and a root over them); the source's is fetched from
/dtm/v1/practices/{ods}/digest while the target computes its own. When the roots
differ, the differing buckets are fetched from both sides and compared resource by
resource: every resource missing, extra or different is named. Resources the
target quarantined are accounted for as quarantined, not missing.

The target's digest tree is kept in a file (--digest-tree; by default next to a
SQLite store), so that the next reconcile advances it by the changes since instead
of reading every resource again; the source keeps its recent trees in memory.

With --out, it writes the integrity report of the practice (the initial extract's
counts, quarantine by rule and timings, the latest pull, and this reconciliation)
as report.json and report.md in that directory.

Exit status 0: the target matches, or differs only by quarantined resources; 3: a
mismatch (resources missing, extra or different). Run it when no pull is under way.`,
		Example: `  dtm target reconcile --source http://127.0.0.1:8080 --practice A81001 --db sqlite:target.db --out ./evidence`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts target.ReconcileOptions
			if at != "" {
				t, err := time.Parse(time.RFC3339Nano, at)
				if err != nil {
					return usageError{fmt.Errorf("--at %q is not an instant such as 2026-11-25T17:00:00.123456Z", at)}
				}
				opts.At = t
			}
			ctx := cmd.Context()
			c, err := o.client(ctx, e)
			if err != nil {
				return err
			}
			st, state, err := openTarget(ctx, db, e.logger())
			if err != nil {
				return err
			}
			defer st.Close()
			opts.State, opts.MaxBuckets, opts.TreeFile = state, maxBuckets, treeFile(tree, db, o.practice)
			rep, err := target.Reconcile(ctx, c, st, o.practice, opts)
			if err != nil {
				return err
			}
			if err := rep.WriteSummary(e.stdout); err != nil {
				return err
			}
			if out != "" {
				in, err := target.IntegrityReport(ctx, state, c.Source(), o.practice, time.Now(), &rep)
				if err != nil {
					return err
				}
				if err := target.WriteReport(out, in); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "report written to %s and %s\n", filepath.Join(out, "report.json"), filepath.Join(out, "report.md"))
			}
			if rep.Result == target.ReconcileMismatch {
				return errFindings
			}
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().Lookup("output").Hidden = true
	cmd.Flags().Lookup("actor").Hidden = true
	cmd.Flags().StringVar(&db, "db", defaultTargetDB, "target store: sqlite:PATH or postgres://...")
	cmd.Flags().StringVar(&out, "out", "", "directory for report.json and report.md")
	cmd.Flags().StringVar(&at, "at", "", "source snapshot to compare with (default: the checkpoint's transactionTime)")
	cmd.Flags().IntVar(&maxBuckets, "max-buckets", 10_000, "at most this many differing buckets are examined")
	cmd.Flags().StringVar(&tree, "digest-tree", "", `file keeping the target's digest tree between reconciles, so that the next one costs what the changes since cost ("none" to compute afresh; default next to a SQLite store)`)
	return cmd
}

// treeFile returns the file keeping the digest tree: flag when given
// ("none": no file), else PATH.digest-ODS.json next to a SQLite store.
func treeFile(flag, dsn, practice string) string {
	switch {
	case flag == "none":
		return ""
	case flag != "":
		return flag
	}
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		return strings.TrimPrefix(path, "//") + ".digest-" + practice + ".json"
	}
	return ""
}
