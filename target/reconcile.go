package target

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/reconcile"
)

// Reconciliation results.
const (
	// ReconcileMatch: the target holds exactly what the source holds (the
	// digest roots are equal).
	ReconcileMatch = "match"
	// ReconcileAccounted: every difference is a resource the target
	// quarantined (and reports as a data issue); nothing is missing
	// silently.
	ReconcileAccounted = "accounted"
	// ReconcileMismatch: resources are missing, extra or different with
	// no quarantine to explain them.
	ReconcileMismatch = "mismatch"
)

// ReconcileOptions configure Reconcile. The zero value is usable.
type ReconcileOptions struct {
	// At is the source snapshot to compare with (an export's
	// transactionTime); zero means the checkpoint of the last pull.
	At time.Time
	// State, when set, gives the checkpoint and the quarantine records
	// that account for differences.
	State dtm.TargetState
	// MaxBuckets bounds the differing buckets drilled into (10,000 when
	// 0); the rest are listed but not examined.
	MaxBuckets int
	// Parallel bounds concurrent drill-down requests (4 when 0).
	Parallel int
	// Clock times the phases; dtm.SystemClock{} when nil.
	Clock dtm.Clock
	// TreeFile, when set, keeps the target's digest tree between
	// reconciles: it is read (when it holds a tree of this practice and
	// store) and advanced to the store's latest snapshot, which costs what
	// the changes since cost, instead of computing the digest from scratch;
	// then the new tree is written back.
	TreeFile string
}

// DigestSide is one side's digest summary in a ReconcileReport.
type DigestSide struct {
	Root     string           `json:"root"`
	Total    int64            `json:"total"`
	Excluded int64            `json:"excluded"`
	Buckets  int              `json:"buckets"`
	Counts   map[string]int64 `json:"counts"`
	Seq      int64            `json:"seq"` // the snapshot in that side's journal
}

// ReconcileReport is the result of Reconcile: both digests, the differing buckets
// and, resource by resource, every difference found in them.
type ReconcileReport struct {
	Practice        string     `json:"practice"`
	Source          string     `json:"source"`
	TransactionTime time.Time  `json:"transactionTime"` // the source snapshot compared
	Result          string     `json:"result"`          // ReconcileMatch, ReconcileAccounted or ReconcileMismatch
	SourceDigest    DigestSide `json:"sourceDigest"`
	TargetDigest    DigestSide `json:"targetDigest"`
	// CountsDiffer lists the types whose counts differ.
	CountsDiffer []string `json:"countsDiffer,omitempty"`
	// DifferentBuckets are the buckets (patient ids; "" for resources in
	// no compartment) whose digests differ, and Unexamined those of them
	// not drilled into (beyond MaxBuckets).
	DifferentBuckets []string                `json:"differentBuckets,omitempty"`
	Unexamined       []string                `json:"unexamined,omitempty"`
	Differences      []reconcile.Difference  `json:"differences,omitempty"`
	Summary          map[string]int          `json:"summary"` // by Difference kind
	Timings          map[string]Milliseconds `json:"timings"`
	// TargetTree says how the target's digest was obtained: "computed", or
	// "advanced from seq N" (ReconcileOptions.TreeFile).
	TargetTree string   `json:"targetTree"`
	Warnings   []string `json:"warnings,omitempty"`
}

// Milliseconds is a duration that marshals as a number of milliseconds.
type Milliseconds time.Duration

// MarshalJSON writes the duration in milliseconds.
func (m Milliseconds) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%.1f", float64(time.Duration(m))/float64(time.Millisecond)), nil
}

// UnmarshalJSON reads a number of milliseconds.
func (m *Milliseconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*m = Milliseconds(f * float64(time.Millisecond))
	return nil
}

// Reconcile proves the target store holds what the source held at one
// snapshot, or names what differs (invariant 5, A3). It computes the
// target's digest (package reconcile) over its latest snapshot while the
// source computes its own at opts.At (the checkpoint's transactionTime by
// default); when the roots differ it fetches the differing buckets from
// both and compares them resource by resource. A difference whose source
// version the target quarantined is counted as quarantined, not missing.
//
// Reconcile is meaningful only when no pull of the practice is under way
// (the target store would hold part of a newer export); it then adds a
// warning. It returns an error only when it cannot compare.
func Reconcile(ctx context.Context, client *Client, store dtm.Journal, practice string, opts ReconcileOptions) (ReconcileReport, error) {
	if opts.Clock == nil {
		opts.Clock = dtm.SystemClock{}
	}
	rep := ReconcileReport{Practice: practice, Source: client.Source(), Summary: map[string]int{},
		Timings: map[string]Milliseconds{}}
	start := opts.Clock.Now()
	at, err := reconcileAt(ctx, client, practice, &opts, &rep)
	if err != nil {
		return rep, err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	src, tgt, kept, err := bothDigests(ctx, client, store, practice, at, head, &rep, opts.Clock, opts.TreeFile)
	if err != nil {
		return rep, err
	}
	rep.TransactionTime = src.Snapshot.Time
	rep.SourceDigest, rep.TargetDigest = side(src), side(tgt)
	rep.CountsDiffer = reconcile.DifferentCounts(src.Counts, tgt.Counts)
	rep.Result = ReconcileMatch
	if src.Root != tgt.Root {
		t := opts.Clock.Now()
		if err := drill(ctx, client, store, practice, src, tgt, head, kept, opts, &rep); err != nil {
			return rep, err
		}
		rep.Timings["drillDown"] = Milliseconds(opts.Clock.Now().Sub(t))
	}
	rep.Timings["total"] = Milliseconds(opts.Clock.Now().Sub(start))
	return rep, nil
}

// reconcileAt returns the source instant to compare at: opts.At, or the
// checkpoint; it warns about a pull under way.
func reconcileAt(ctx context.Context, client *Client, practice string, opts *ReconcileOptions, rep *ReconcileReport) (time.Time, error) {
	if opts.State == nil {
		return opts.At, nil
	}
	if _, active, err := opts.State.ActivePull(ctx, client.Source(), practice); err != nil {
		return time.Time{}, fmt.Errorf("reconcile: %w", err)
	} else if active {
		rep.Warnings = append(rep.Warnings, "a pull of this practice is under way: the target store may hold part of a newer export")
	}
	if !opts.At.IsZero() {
		return opts.At, nil
	}
	cp, err := opts.State.Checkpoint(ctx, client.Source(), practice)
	if err != nil {
		return time.Time{}, fmt.Errorf("reconcile: %w", err)
	}
	if cp.TransactionTime.IsZero() {
		return time.Time{}, dtm.Errorf(dtm.EConflict, "reconcile: nothing pulled from %s for %s yet", client.Source(), practice)
	}
	return cp.TransactionTime, nil
}

// bothDigests fetches the source's digest at `at` while computing the
// target's at head.
func bothDigests(ctx context.Context, client *Client, store dtm.Journal, practice string, at time.Time, head dtm.Snapshot,
	rep *ReconcileReport, clock dtm.Clock, treeFile string) (src, tgt dtm.Digest, kept map[string][]dtm.DigestEntry, err error) {
	var srcErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := clock.Now()
		src, srcErr = client.Digest(ctx, practice, at)
		rep.Timings["sourceDigest"] = Milliseconds(clock.Now().Sub(t))
	}()
	t := clock.Now()
	tree, how, err := targetTree(ctx, store, practice, head, treeFile)
	tgt, kept = tree.Digest, map[string][]dtm.DigestEntry{dtm.NoPatient: tree.NoPatient}
	rep.TargetTree = how
	d := Milliseconds(clock.Now().Sub(t))
	wg.Wait()
	rep.Timings["targetDigest"] = d
	if err != nil {
		return src, tgt, nil, fmt.Errorf("reconcile: target digest: %w", err)
	}
	if srcErr != nil {
		return src, tgt, nil, fmt.Errorf("reconcile: %w", srcErr)
	}
	if !at.IsZero() && !src.Snapshot.Time.Equal(at) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the source has no commit at %s; compared with its snapshot of %s",
			at.UTC().Format(time.RFC3339Nano), src.Snapshot.Time.UTC().Format(time.RFC3339Nano)))
	}
	return src, tgt, kept, nil
}

func side(d dtm.Digest) DigestSide {
	return DigestSide{Root: d.Root, Total: d.Total, Excluded: d.Excluded, Buckets: len(d.Buckets), Counts: d.Counts, Seq: d.Snapshot.Seq}
}

// drill compares the differing buckets entry by entry and classifies the
// differences.
func drill(ctx context.Context, client *Client, store dtm.Journal, practice string, src, tgt dtm.Digest, head dtm.Snapshot,
	kept map[string][]dtm.DigestEntry, opts ReconcileOptions, rep *ReconcileReport) error {
	buckets := reconcile.DifferentBuckets(src.Buckets, tgt.Buckets)
	rep.DifferentBuckets = buckets
	max := opts.MaxBuckets
	if max <= 0 {
		max = 10_000
	}
	if len(buckets) > max {
		rep.Unexamined = buckets[max:]
		buckets = buckets[:max]
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d differing buckets not examined (limit %d)", len(rep.Unexamined), max))
	}
	srcSide, tgtSide := reconcile.Side{}, reconcile.Side{}
	var mu sync.Mutex
	err := forEach(ctx, len(buckets), cmp(opts.Parallel, 4), func(ctx context.Context, i int) error {
		p := buckets[i]
		var s, t []dtm.DigestEntry
		var err error
		if _, ok := src.Buckets[p]; ok {
			if s, err = client.DigestBucket(ctx, practice, p, src.Snapshot.Time); err != nil {
				return fmt.Errorf("reconcile: source bucket: %w", err)
			}
		}
		if _, ok := tgt.Buckets[p]; ok {
			if p == dtm.NoPatient {
				t = kept[p]
			} else if t, err = reconcile.Bucket(ctx, store, practice, p, head.Seq); err != nil {
				return fmt.Errorf("reconcile: target bucket: %w", err)
			}
		}
		mu.Lock()
		srcSide[p], tgtSide[p] = s, t
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	rep.Differences = reconcile.Compare(srcSide, tgtSide)
	if err := accountQuarantine(ctx, client, practice, opts.State, rep.Differences); err != nil {
		return err
	}
	rep.Result = ReconcileAccounted
	for _, d := range rep.Differences {
		rep.Summary[d.Kind]++
		if d.Kind != reconcile.Quarantined {
			rep.Result = ReconcileMismatch
		}
	}
	if len(rep.Unexamined) > 0 || (len(rep.Differences) == 0 && src.Root != tgt.Root) {
		rep.Result = ReconcileMismatch
	}
	return nil
}

// accountQuarantine marks as quarantined every missing or different
// resource whose source version the target quarantined (in a complete
// pull from this source).
func accountQuarantine(ctx context.Context, client *Client, practice string, state dtm.TargetState, ds []reconcile.Difference) error {
	if state == nil || len(ds) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, d := range ds {
		if d.Kind != reconcile.Extra {
			want[d.Resource] = true
		}
	}
	pulls, err := state.Pulls(ctx, practice, 1_000_000)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	complete := map[string]bool{}
	for _, p := range pulls {
		if p.Source == client.Source() && p.Status == dtm.PullComplete {
			complete[p.ID] = true
		}
	}
	type rec struct {
		version int64
		reason  string
	}
	latest := map[string]rec{}
	err = state.Quarantined(ctx, practice, "", func(q dtm.QuarantineRecord) error {
		if k := q.Type + "/" + q.ID; complete[q.Pull] && want[k] {
			latest[k] = rec{q.Version, quarantineReason(q)}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for i, d := range ds {
		if q, ok := latest[d.Resource]; ok && d.Kind != reconcile.Extra && (q.version == d.SourceVersion || q.version == 0) {
			ds[i].Kind, ds[i].Reason = reconcile.Quarantined, q.reason
		}
	}
	return nil
}

// quarantineReason describes why q was quarantined: its reason and, for
// invalid resources, the rules of its errors.
func quarantineReason(q dtm.QuarantineRecord) string {
	var rules []string
	for _, is := range outcomeIssues(q.Outcome) {
		if rule, _, ok := strings.Cut(is.Diagnostics, ": "); ok && (is.Severity == "error" || is.Severity == "fatal") && !strings.Contains(rule, " ") {
			rules = append(rules, rule)
		}
	}
	rules = slices.Compact(slices.Sorted(slices.Values(rules)))
	if len(rules) == 0 {
		return q.Reason
	}
	return q.Reason + ": " + strings.Join(rules, ", ")
}

// sortedKeys returns m's keys sorted.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
