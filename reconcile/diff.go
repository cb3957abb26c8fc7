package reconcile

import (
	"cmp"
	"maps"
	"slices"

	"github.com/dtm-project/dtm"
)

// Kinds of Difference.
const (
	Missing     = "missing"     // at the source, not at the target
	Extra       = "extra"       // at the target, not at the source
	Different   = "different"   // at both, with different content
	Quarantined = "quarantined" // not (or not in this version) at the target because the target quarantined it
)

// Difference is one resource that is not the same at the source and the
// target. It names the resource only: no content.
type Difference struct {
	Kind          string `json:"kind"`
	Resource      string `json:"resource"`                // "Type/id"
	SourceBucket  string `json:"sourceBucket,omitempty"`  // bucket (patient) at the source
	TargetBucket  string `json:"targetBucket,omitempty"`  // bucket (patient) at the target
	SourceVersion int64  `json:"sourceVersion,omitempty"` // 0 when absent at the source
	TargetVersion int64  `json:"targetVersion,omitempty"` // 0 when absent at the target
	SourceHash    string `json:"sourceHash,omitempty"`
	TargetHash    string `json:"targetHash,omitempty"`
	// Reason says why a quarantined resource was quarantined (the
	// quarantine reason and rules); "" for other kinds.
	Reason string `json:"reason,omitempty"`
}

// DifferentBuckets returns, sorted, the buckets whose digests differ
// between src and tgt, including those present on one side only.
func DifferentBuckets(src, tgt map[string]string) []string {
	var out []string
	for p, d := range src {
		if tgt[p] != d {
			out = append(out, p)
		}
	}
	for p := range tgt {
		if _, ok := src[p]; !ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// DifferentCounts returns the types whose counts differ, sorted.
func DifferentCounts(src, tgt map[string]int64) []string {
	var out []string
	for _, t := range slices.Sorted(maps.Keys(src)) {
		if src[t] != tgt[t] {
			out = append(out, t)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(tgt)) {
		if _, ok := src[t]; !ok {
			out = append(out, t)
		}
	}
	return out
}

// Side is one side's entries of the buckets being compared, by bucket.
type Side map[string][]dtm.DigestEntry

// Compare names every resource that differs between the source's and the
// target's entries of the same buckets: missing, extra or different. A
// resource in one bucket at the source and another at the target (its
// compartment patient differs) is one Different, whatever the hashes. The
// result is sorted by resource.
func Compare(src, tgt Side) []Difference {
	type at struct {
		bucket string
		e      dtm.DigestEntry
	}
	index := func(s Side) map[string]at {
		m := map[string]at{}
		for b, es := range s {
			for _, e := range es {
				m[e.Type+"/"+e.ID] = at{b, e}
			}
		}
		return m
	}
	si, ti := index(src), index(tgt)
	var out []Difference
	for r, s := range si {
		t, ok := ti[r]
		d := Difference{Resource: r, SourceBucket: s.bucket, SourceVersion: s.e.Version, SourceHash: s.e.Hash}
		switch {
		case !ok:
			d.Kind = Missing
		case t.e.Hash != s.e.Hash || t.bucket != s.bucket:
			d.Kind = Different
			d.TargetBucket, d.TargetVersion, d.TargetHash = t.bucket, t.e.Version, t.e.Hash
		default:
			continue
		}
		out = append(out, d)
	}
	for r, t := range ti {
		if _, ok := si[r]; !ok {
			out = append(out, Difference{Kind: Extra, Resource: r, TargetBucket: t.bucket, TargetVersion: t.e.Version, TargetHash: t.e.Hash})
		}
	}
	slices.SortFunc(out, func(a, b Difference) int { return cmp.Compare(a.Resource, b.Resource) })
	return out
}
