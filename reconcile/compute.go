package reconcile

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"

	"github.com/dtm-project/dtm"
)

// headerLister is the optional Journal extension package bulk defines
// (bulk.HeaderLister): Changes without the resource JSON.
type headerLister interface {
	ChangeHeaders(ctx context.Context, q dtm.ChangeQuery, fn func(dtm.Change) error) error
}

// Compute returns the digest of the practice at snapshot snap of journal
// j, with the entries of the buckets keep names (keep may be nil). It reads
// the journal once: through dtm.DigestLister when j implements it (memory
// of one bucket); otherwise one type at a time, several types at once,
// through ChangeHeaders when j has it (no resource bodies) or
// Journal.Changes (memory of about 90 bytes per resource). It returns the
// journal's error, wrapped.
func Compute(ctx context.Context, j dtm.Journal, practice string, snap dtm.Snapshot, keep func(string) bool) (dtm.Digest, map[string][]dtm.DigestEntry, error) {
	b := NewBuilder(practice, snap, keep)
	if err := b.read(ctx, j); err != nil {
		return dtm.Digest{}, nil, err
	}
	return b.Finish()
}

// read adds the state at b's snapshot of every resource of its practice.
func (b *Builder) read(ctx context.Context, j dtm.Journal) error {
	var err error
	if dl, ok := j.(dtm.DigestLister); ok {
		last := ""
		err = dl.DigestChanges(ctx, b.d.Practice, b.d.Snapshot.Seq, func(c dtm.Change) error {
			if c.Patient != last {
				b.FlushBefore(c.Patient)
				last = c.Patient
			}
			b.Add(c)
			return nil
		})
	} else if b.d.Snapshot.Seq > 0 {
		err = scanTypes(ctx, j, b.d.Practice, b.d.Snapshot.Seq, b)
	}
	if err != nil {
		return fmt.Errorf("digest %s: %w", b.d.Practice, err)
	}
	return nil
}

// scanTypes adds the state at seq `at` of every resource of the practice
// to b, reading the types in parallel (at most GOMAXPROCS, and 4, at once).
// The types are those live at `at` (Journal.Counts) and Patient, whose
// deletes matter for Group scope.
func scanTypes(ctx context.Context, j dtm.Journal, practice string, at int64, b *Builder) error {
	counts, err := j.Counts(ctx, practice, at)
	if err != nil {
		return err
	}
	counts["Patient"] += 0
	types := slices.Sorted(maps.Keys(counts))
	slices.SortStableFunc(types, func(x, y string) int { return -cmp.Compare(counts[x], counts[y]) }) // biggest first
	scan := changeHeaders(j)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), 4, len(types)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for typ := range next {
				err := scan(ctx, dtm.ChangeQuery{Practice: practice, Type: typ, Until: at}, func(c dtm.Change) error {
					c.JSON = nil
					mu.Lock()
					b.Add(c)
					mu.Unlock()
					return nil
				})
				if err != nil {
					cancel(err)
				}
			}
		}()
	}
	for _, t := range types {
		select {
		case next <- t:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// Bucket returns the entries of one bucket of the practice's digest at seq
// at, sorted as the digest hashes them: a patient's compartment (through
// Journal.Compartment, in Group scope) or, for dtm.NoPatient, the resources
// in no compartment (which needs a scan of the practice's journal). Their
// BucketDigest equals the bucket's digest in Compute's result.
func Bucket(ctx context.Context, j dtm.Journal, practice, patient string, at int64) ([]dtm.DigestEntry, error) {
	es, _, err := bucketEntries(ctx, j, practice, patient, at)
	return es, err
}

// bucketEntries returns Bucket's entries and how many resources Group scope left
// out of the bucket.
func bucketEntries(ctx context.Context, j dtm.Journal, practice, patient string, at int64) ([]dtm.DigestEntry, int64, error) {
	var out []dtm.DigestEntry
	add := func(c dtm.Change) {
		out = append(out, dtm.DigestEntry{Type: c.Type, ID: c.ID, Version: c.Version, Hash: c.Hash})
	}
	if patient == dtm.NoPatient {
		if err := noPatientStates(ctx, j, practice, at, add); err != nil {
			return nil, 0, fmt.Errorf("digest bucket: %w", err)
		}
		return SortEntries(out), 0, nil
	}
	inScope := true
	st, err := j.State(ctx, practice, "Patient", patient, at)
	switch {
	case dtm.ErrorCode(err) == dtm.ENotFound:
	case err != nil:
		return nil, 0, fmt.Errorf("digest bucket: %w", err)
	default:
		inScope = st.Op == dtm.OpUpsert && st.Member
	}
	var excluded int64
	err = j.Compartment(ctx, practice, patient, at, func(c dtm.Change) error {
		if inScope || (c.Type == "Patient" && c.ID == patient) {
			add(c)
		} else {
			excluded++
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("digest bucket: %w", err)
	}
	return SortEntries(out), excluded, nil
}

// errNoPatientDone ends a DigestChanges scan at the first compartment.
var errNoPatientDone = errors.New("no-patient bucket read")

// noPatientStates calls add with the state at `at` of every live resource
// of the practice in no compartment. Through dtm.DigestLister it reads only
// those (they come first); otherwise it scans the practice's journal,
// without the bodies when j has ChangeHeaders.
func noPatientStates(ctx context.Context, j dtm.Journal, practice string, at int64, add func(dtm.Change)) error {
	if dl, ok := j.(dtm.DigestLister); ok {
		err := dl.DigestChanges(ctx, practice, at, func(c dtm.Change) error {
			if c.Patient != dtm.NoPatient {
				return errNoPatientDone
			}
			if c.Op == dtm.OpUpsert {
				add(c)
			}
			return nil
		})
		if errors.Is(err, errNoPatientDone) {
			return nil
		}
		return err
	}
	return changeHeaders(j)(ctx, dtm.ChangeQuery{Practice: practice, Until: at}, func(c dtm.Change) error {
		if c.Op == dtm.OpUpsert && c.Patient == dtm.NoPatient {
			add(c)
		}
		return nil
	})
}

// changeHeaders returns j's ChangeHeaders when it has it (no resource
// bodies), and its Changes otherwise.
func changeHeaders(j dtm.Journal) func(context.Context, dtm.ChangeQuery, func(dtm.Change) error) error {
	if hl, ok := j.(headerLister); ok {
		return hl.ChangeHeaders
	}
	return j.Changes
}

// SortEntries sorts es in the order the digest hashes them (their lines
// bytewise) and returns es.
func SortEntries(es []dtm.DigestEntry) []dtm.DigestEntry {
	slices.SortFunc(es, func(x, y dtm.DigestEntry) int {
		if c := comparePrefix(x.Type, []byte(x.ID), y.Type, []byte(y.ID)); c != 0 {
			return c
		}
		return compareSlash(x.Hash, y.Hash)
	})
	return es
}

// BucketDigest returns the digest of a bucket holding es (in any order):
// the hex SHA-256 of the lines "Type/id/hash\n" sorted bytewise. It does
// not modify es.
func BucketDigest(es []dtm.DigestEntry) string {
	sorted := SortEntries(slices.Clone(es))
	h := sha256.New()
	var line []byte
	for _, e := range sorted {
		line = append(line[:0], e.Type...)
		line = append(line, '/')
		line = append(line, e.ID...)
		line = append(line, '/')
		line = append(line, e.Hash...)
		line = append(line, '\n')
		h.Write(line)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// RootDigest returns the root of a digest tree: the hex SHA-256 of the
// lines "patient:digest\n" of every bucket, sorted bytewise.
func RootDigest(buckets map[string]string) string {
	lines := make([]string, 0, len(buckets))
	for _, p := range slices.Collect(maps.Keys(buckets)) {
		lines = append(lines, p+":"+buckets[p]+"\n")
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
	}
	return hex.EncodeToString(h.Sum(nil))
}
