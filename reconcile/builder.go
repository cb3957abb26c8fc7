package reconcile

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"

	"github.com/dtm-project/dtm"
)

// Builder accumulates the state of a practice's resources at one snapshot
// and computes its dtm.Digest. Changes may be added in any order; memory
// grows with the number of resources held (about 90 bytes each) until
// Finish, or with one bucket at a time when the changes come grouped by
// patient and FlushBefore is used. A Builder is not safe for concurrent
// use.
type Builder struct {
	d       dtm.Digest
	keep    func(patient string) bool
	types   []string          // type index → name
	typeIdx map[string]uint16 // name → type index
	buckets map[string]*bucket
	// outOfScope holds the patients whose Patient resource exists at the
	// snapshot but is deleted or not a member (their compartments are
	// outside Group scope).
	outOfScope map[string]bool
	inScope    map[string]bool // patients with a live member Patient resource
	kept       map[string][]dtm.DigestEntry
	sums       map[string]BucketSum
	spare      *bucket // a finished bucket's memory, for the next one
	err        error
}

// bucket holds one compartment's entries; ids are packed in one arena.
type bucket struct {
	entries []entry
	ids     []byte
}

type entry struct {
	hash    [sha256.Size]byte
	version int64
	off     uint32 // id's offset in bucket.ids
	n       uint16 // id's length
	typ     uint16
}

// NewBuilder returns a Builder for the practice at snapshot snap. keep,
// when not nil, names the buckets whose entries Finish returns as well (the
// source keeps NoPatient, whose drill-down would otherwise need a scan of
// the whole journal).
func NewBuilder(practice string, snap dtm.Snapshot, keep func(patient string) bool) *Builder {
	return &Builder{
		d:    dtm.Digest{Practice: practice, Snapshot: snap, Counts: map[string]int64{}, Buckets: map[string]string{}},
		keep: keep, typeIdx: map[string]uint16{}, buckets: map[string]*bucket{},
		outOfScope: map[string]bool{}, inScope: map[string]bool{}, kept: map[string][]dtm.DigestEntry{},
		sums: map[string]BucketSum{},
	}
}

// Add records c, the state at the snapshot of one resource. Deletes are
// only noted (a deleted Patient puts its compartment out of scope); live
// resources become entries. The first malformed change (a content hash
// that is not hex SHA-256) is reported by Finish.
func (b *Builder) Add(c dtm.Change) {
	if c.Type == "Patient" {
		if c.Op == dtm.OpUpsert && c.Member {
			b.inScope[c.ID] = true
		} else {
			b.outOfScope[c.ID] = true
		}
	}
	if c.Op != dtm.OpUpsert || b.err != nil {
		return
	}
	var e entry
	if len(c.Hash) != 2*sha256.Size {
		b.err = dtm.Errorf(dtm.EInternal, "digest: %s has no content hash", c.Type)
		return
	}
	if _, err := hex.Decode(e.hash[:], []byte(c.Hash)); err != nil {
		b.err = dtm.Errorf(dtm.EInternal, "digest: %s has a malformed content hash", c.Type)
		return
	}
	if len(c.ID) > 0xffff {
		b.err = dtm.Errorf(dtm.EInternal, "digest: id too long")
		return
	}
	t, ok := b.typeIdx[c.Type]
	if !ok {
		t = uint16(len(b.types))
		b.typeIdx[c.Type] = t
		b.types = append(b.types, c.Type)
	}
	bk := b.buckets[c.Patient]
	if bk == nil {
		bk, b.spare = b.spare, nil
		if bk == nil {
			bk = &bucket{}
		}
		b.buckets[c.Patient] = bk
	}
	e.version, e.typ, e.off, e.n = c.Version, t, uint32(len(bk.ids)), uint16(len(c.ID))
	bk.ids = append(bk.ids, c.ID...)
	bk.entries = append(bk.entries, e)
}

// FlushBefore finishes every bucket whose patient sorts before patient,
// releasing its entries. Call it only when changes arrive ordered by
// patient (dtm.DigestLister), each time the patient changes.
func (b *Builder) FlushBefore(patient string) {
	for p := range b.buckets {
		if p < patient {
			b.finish(p)
		}
	}
}

// Finish computes the digest from everything added and returns it with
// the entries of the kept buckets. It returns the first error Add met.
func (b *Builder) Finish() (dtm.Digest, map[string][]dtm.DigestEntry, error) {
	if b.err != nil {
		return dtm.Digest{}, nil, b.err
	}
	for _, p := range slices.Sorted(maps.Keys(b.buckets)) {
		b.finish(p)
	}
	b.d.Root = RootDigest(b.d.Buckets)
	return b.d, b.kept, nil
}

// finish computes one bucket's digest, applying Group scope, and drops its
// entries.
func (b *Builder) finish(p string) {
	bk := b.buckets[p]
	delete(b.buckets, p)
	defer func() {
		bk.entries, bk.ids = bk.entries[:0], bk.ids[:0]
		b.spare = bk
	}()
	var excluded int64
	if p != dtm.NoPatient && b.outOfScope[p] && !b.inScope[p] {
		n := 0
		for _, e := range bk.entries {
			if b.types[e.typ] == "Patient" && bk.id(e) == p {
				bk.entries[n] = e
				n++
			} else {
				excluded++
			}
		}
		bk.entries = bk.entries[:n]
	}
	b.d.Excluded += excluded
	if len(bk.entries) == 0 {
		if excluded > 0 {
			b.sums[p] = BucketSum{Excluded: excluded}
		}
		return
	}
	slices.SortFunc(bk.entries, func(x, y entry) int { return b.compare(bk, x, y) })
	h := sha256.New()
	var line []byte
	sum := BucketSum{Counts: map[string]int64{}, Excluded: excluded}
	for _, e := range bk.entries {
		line = b.appendLine(line[:0], bk, e)
		h.Write(line)
		sum.Counts[b.types[e.typ]]++
		b.d.Counts[b.types[e.typ]]++
		b.d.Total++
	}
	sum.Digest = hex.EncodeToString(h.Sum(nil))
	b.d.Buckets[p] = sum.Digest
	b.sums[p] = sum
	if b.keep != nil && b.keep(p) {
		es := make([]dtm.DigestEntry, len(bk.entries))
		for i, e := range bk.entries {
			es[i] = dtm.DigestEntry{Type: b.types[e.typ], ID: bk.id(e), Version: e.version, Hash: hex.EncodeToString(e.hash[:])}
		}
		b.kept[p] = es
	}
}

func (bk *bucket) id(e entry) string { return string(bk.ids[e.off : e.off+uint32(e.n)]) }

// compare orders entries as their lines "Type/id/hash" sort bytewise.
// Neither a type nor an id contains '/', so comparing "Type/id/" decides
// (one resource appears once per bucket); the hash breaks ties anyway.
func (b *Builder) compare(bk *bucket, x, y entry) int {
	xt, yt := b.types[x.typ], b.types[y.typ]
	xi, yi := bk.ids[x.off:x.off+uint32(x.n)], bk.ids[y.off:y.off+uint32(y.n)]
	if c := comparePrefix(xt, xi, yt, yi); c != 0 {
		return c
	}
	return bytes.Compare(x.hash[:], y.hash[:])
}

// comparePrefix compares xt+"/"+xi+"/" with yt+"/"+yi+"/" bytewise without
// building them.
func comparePrefix(xt string, xi []byte, yt string, yi []byte) int {
	if c := compareSlash(xt, yt); c != 0 {
		return c
	}
	return compareSlash(xi, yi)
}

// compareSlash compares a+"/" with b+"/" bytewise.
func compareSlash[S string | []byte](a, b S) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return cmp.Compare(a[i], b[i])
		}
	}
	switch {
	case len(a) == len(b):
		return 0
	case len(a) < len(b):
		return cmp.Compare('/', b[n])
	}
	return cmp.Compare(a[n], '/')
}

func (b *Builder) appendLine(dst []byte, bk *bucket, e entry) []byte {
	dst = append(dst, b.types[e.typ]...)
	dst = append(dst, '/')
	dst = append(dst, bk.ids[e.off:e.off+uint32(e.n)]...)
	dst = append(dst, '/')
	dst = hex.AppendEncode(dst, e.hash[:])
	return append(dst, '\n')
}
