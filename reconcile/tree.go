package reconcile

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/dtm-project/dtm"
)

// BucketSum is what a Tree keeps of one bucket: its digest, its live
// resources per type and how many resources Group scope left out of it.
type BucketSum struct {
	Digest   string           `json:"d,omitempty"` // "" when the bucket is empty
	Counts   map[string]int64 `json:"c,omitempty"`
	Excluded int64            `json:"x,omitempty"`
}

// Tree is a practice's digest at one snapshot with what Advance needs to
// move it to another snapshot at a cost that grows with the changes in
// between rather than with the practice: every bucket's summary and the
// entries of the no-patient bucket (which no index reaches). A Tree is a
// value; Advance returns a new one. It marshals to JSON, so the target can
// keep it between reconciles.
type Tree struct {
	Digest    dtm.Digest           `json:"digest"`
	Sums      map[string]BucketSum `json:"sums"`
	NoPatient []dtm.DigestEntry    `json:"noPatient,omitempty"`
}

// ComputeTree computes the practice's digest tree at snap from scratch
// (see Compute).
func ComputeTree(ctx context.Context, j dtm.Journal, practice string, snap dtm.Snapshot) (Tree, error) {
	b := NewBuilder(practice, snap, func(p string) bool { return p == dtm.NoPatient })
	if err := b.read(ctx, j); err != nil {
		return Tree{}, err
	}
	d, kept, err := b.Finish()
	if err != nil {
		return Tree{}, err
	}
	return Tree{Digest: d, Sums: b.sums, NoPatient: kept[dtm.NoPatient]}, nil
}

// maxTouched is the share of buckets above which Advance recomputes the
// tree from scratch instead (a variable for tests).
var maxTouched = 0.5

// Advance returns the practice's digest tree at snapshot to, moved from t
// (of the same practice and journal): it reads the changes between the two
// snapshots (Journal.Changes over that range, and Journal.State of each
// changed resource at the earlier one), recomputes the buckets they touch
// (Journal.Compartment, one indexed read per patient) and the no-patient
// bucket from t's entries, and keeps every other bucket. to may be earlier
// than t's snapshot. When more than half the buckets changed it computes
// the tree from scratch. The result equals ComputeTree(to).
func Advance(ctx context.Context, j dtm.Journal, t Tree, to dtm.Snapshot) (Tree, error) {
	from := t.Digest.Snapshot
	practice := t.Digest.Practice
	if to.Seq == from.Seq {
		return t, nil
	}
	lo, hi := min(from.Seq, to.Seq), max(from.Seq, to.Seq)
	// npEdits holds the no-patient bucket's changed entries (nil: gone);
	// t.NoPatient is only filtered through it at the end, since it can
	// hold hundreds of thousands of entries and a change few of them.
	npEdits := map[resourceKey]*dtm.DigestEntry{}
	touched := map[string]bool{}
	err := changeHeaders(j)(ctx, dtm.ChangeQuery{Practice: practice, Since: lo, Until: hi}, func(c dtm.Change) error {
		old, err := j.State(ctx, practice, c.Type, c.ID, lo)
		switch {
		case dtm.ErrorCode(err) == dtm.ENotFound:
			old = dtm.Change{Op: dtm.OpDelete}
		case err != nil:
			return err
		}
		now, then := c, old // the states at `to` and at t's snapshot
		if to.Seq == lo {
			now, then = old, c
		}
		for _, s := range []dtm.Change{c, old} {
			if s.Patient != dtm.NoPatient {
				touched[s.Patient] = true
			}
		}
		k := resourceKey{c.Type, c.ID}
		if then.Op == dtm.OpUpsert && then.Patient == dtm.NoPatient {
			npEdits[k] = nil // in t.NoPatient: it held every live no-patient resource
		}
		if now.Op == dtm.OpUpsert && now.Patient == dtm.NoPatient {
			npEdits[k] = &dtm.DigestEntry{Type: c.Type, ID: c.ID, Version: now.Version, Hash: now.Hash}
		}
		return nil
	})
	if err != nil {
		return Tree{}, fmt.Errorf("advance digest %s: %w", practice, err)
	}
	if float64(len(touched)) > maxTouched*float64(max(len(t.Sums), 1)) {
		return ComputeTree(ctx, j, practice, to)
	}
	out := Tree{Sums: maps.Clone(t.Sums), NoPatient: t.NoPatient}
	for p := range touched {
		sum, err := bucketSum(ctx, j, practice, p, to.Seq)
		if err != nil {
			return Tree{}, fmt.Errorf("advance digest %s: %w", practice, err)
		}
		if sum.Digest == "" && sum.Excluded == 0 {
			delete(out.Sums, p)
		} else {
			out.Sums[p] = sum
		}
	}
	if len(npEdits) > 0 {
		np := make([]dtm.DigestEntry, 0, len(t.NoPatient)+len(npEdits))
		for _, e := range t.NoPatient {
			if _, ok := npEdits[resourceKey{e.Type, e.ID}]; !ok {
				np = append(np, e)
			}
		}
		for _, e := range npEdits {
			if e != nil {
				np = append(np, *e)
			}
		}
		out.NoPatient = SortEntries(np)
		delete(out.Sums, dtm.NoPatient)
		if len(out.NoPatient) > 0 {
			sum := BucketSum{Digest: BucketDigest(out.NoPatient), Counts: map[string]int64{}}
			for _, e := range out.NoPatient {
				sum.Counts[e.Type]++
			}
			out.Sums[dtm.NoPatient] = sum
		}
	}
	out.Digest = sumUp(practice, to, out.Sums)
	return out, nil
}

// resourceKey names one resource of a practice.
type resourceKey struct{ typ, id string }

// bucketSum returns the summary of patient p's bucket at seq at.
func bucketSum(ctx context.Context, j dtm.Journal, practice, p string, at int64) (BucketSum, error) {
	es, excluded, err := bucketEntries(ctx, j, practice, p, at)
	if err != nil || len(es) == 0 {
		return BucketSum{Excluded: excluded}, err
	}
	sum := BucketSum{Digest: BucketDigest(es), Counts: map[string]int64{}, Excluded: excluded}
	for _, e := range es {
		sum.Counts[e.Type]++
	}
	return sum, nil
}

// sumUp returns the digest the bucket summaries make.
func sumUp(practice string, snap dtm.Snapshot, sums map[string]BucketSum) dtm.Digest {
	d := dtm.Digest{Practice: practice, Snapshot: snap, Counts: map[string]int64{}, Buckets: map[string]string{}}
	for p, s := range sums {
		if s.Digest != "" {
			d.Buckets[p] = s.Digest
		}
		d.Excluded += s.Excluded
		for t, n := range s.Counts {
			d.Counts[t] += n
			d.Total += n
		}
	}
	d.Root = RootDigest(d.Buckets)
	return d
}

// Check reports whether t can be advanced in journal j: t is of the
// practice, and j's snapshot at t's time is t's snapshot (an append-only
// journal never changes what a snapshot holds, so a tree of a snapshot of
// this journal stays true).
func (t Tree) Check(ctx context.Context, j dtm.Journal, practice string) (bool, error) {
	if t.Digest.Practice != practice || t.Sums == nil || strings.TrimSpace(t.Digest.Root) == "" {
		return false, nil
	}
	if t.Digest.Snapshot.Seq == 0 {
		return true, nil
	}
	s, err := j.SnapshotAt(ctx, t.Digest.Snapshot.Time)
	if err != nil {
		return false, err
	}
	return s.Seq == t.Digest.Snapshot.Seq && s.Time.Equal(t.Digest.Snapshot.Time), nil
}
