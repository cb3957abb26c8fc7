package bulk

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dtm-project/dtm"
)

// planner splits one job into files.
type planner struct {
	j        dtm.Journal
	job      *dtm.ExportJob
	max      int64
	parallel int   // concurrent scans of one practice's changes
	minSplit int64 // smallest range split; defaultMinSplit when 0
	// progress is called now and then; its error aborts planning. It must
	// be safe for concurrent use.
	progress func(ctx context.Context, msg string) error
	files    []dtm.ExportFile
}

// plan computes the files of job: for each practice, the change parts
// (the journal over (Since, Until] scanned once, in concurrent sub-ranges,
// and cut per kind and type into parts of at most max resources by
// recording sequence boundaries), then
// the joiner parts, then the error file of a lenient request. Its cost grows
// with the number of changes in range and the size of joiners' records,
// never with the size of the practice.
func (p *planner) plan(ctx context.Context) ([]dtm.ExportFile, error) {
	for i, practice := range p.job.Practices {
		label := fmt.Sprintf("practice %d of %d", i+1, len(p.job.Practices))
		if err := p.planChanges(ctx, practice, label); err != nil {
			return nil, fmt.Errorf("plan changes: %w", err)
		}
		if err := p.planJoiners(ctx, newSelector(p.j, p.job, practice), label); err != nil {
			return nil, fmt.Errorf("plan joiners: %w", err)
		}
	}
	if n := len(ignoredParams(p.job)); n > 0 {
		p.files = append(p.files, dtm.ExportFile{Kind: dtm.FileError, Type: "OperationOutcome", Count: int64(n)})
	}
	numberParts(p.files)
	return p.files, nil
}

// defaultMinSplit is the smallest journal range planChanges splits: below
// it one scan is cheaper than the coordination.
const defaultMinSplit = 20_000

// planChanges cuts the practice's changes into parts. The range
// (Since, Until] is split into up to p.parallel sub-ranges of sequence
// numbers, scanned concurrently; parts never span a sub-range boundary, so
// each is still exactly the kept changes of one (FromSeq, ToSeq] range.
func (p *planner) planChanges(ctx context.Context, practice, label string) error {
	ranges := splitRange(p.job.Since, p.job.Until, p.parallel, cmpOr(p.minSplit, defaultMinSplit))
	parts := make([][]dtm.ExportFile, len(ranges))
	errs := make([]error, len(ranges))
	var scanned atomic.Int64
	var wg sync.WaitGroup
	for i, r := range ranges {
		wg.Go(func() {
			sel := newSelector(p.j, p.job, practice)
			parts[i], errs[i] = p.planRange(ctx, sel, r[0], r[1], func() error {
				if n := scanned.Add(1); n%10_000 == 0 {
					return p.progress(ctx, fmt.Sprintf("%s: %d changes planned", label, n))
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i := range ranges {
		if errs[i] != nil {
			return errs[i]
		}
		p.files = append(p.files, parts[i]...)
	}
	return nil
}

// splitRange splits (from, to] into at most n contiguous sub-ranges of
// about equal size, or returns it whole when it is shorter than minSplit.
func splitRange(from, to int64, n int, minSplit int64) [][2]int64 {
	if n <= 1 || to-from < minSplit {
		return [][2]int64{{from, to}}
	}
	step := (to - from + int64(n) - 1) / int64(n)
	var out [][2]int64
	for a := from; a < to; a += step {
		out = append(out, [2]int64{a, min(a+step, to)})
	}
	return out
}

// planRange cuts the kept changes with seq in (from, to] into parts. It
// scans the range once for every type, or, when the job names types, once
// per named type (using the store's per-type index); deletes of several
// types are then merged in seq order before they are cut, since a deleted
// part spans types. tick is called for every change.
func (p *planner) planRange(ctx context.Context, sel *selector, from, to int64, tick func() error) ([]dtm.ExportFile, error) {
	cut := &cutter{practice: sel.practice, max: p.max, open: map[string]*dtm.ExportFile{}}
	types := []string{""}
	if len(p.job.Types) > 0 {
		types = p.job.Types
	}
	var deletes []int64 // with per-type scans only
	for _, typ := range types {
		err := sel.scanChanges(ctx, typ, from, true, func(c *dtm.Change) error {
			if c.Seq > to {
				return errStop
			}
			if fileKind(c) == dtm.FileDeleted && typ != "" {
				deletes = append(deletes, c.Seq)
			} else {
				cut.add(fileKind(c), c.Type, c.Seq)
			}
			return tick()
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(deletes)
	for _, seq := range deletes {
		cut.add(dtm.FileDeleted, "", seq)
	}
	return cut.finish(), nil
}

// cutter cuts a seq-ordered stream of kept changes, per kind and type,
// into parts of at most max by recording sequence boundaries: a part holds
// the kept changes of its kind and type with seq in (FromSeq, ToSeq].
type cutter struct {
	practice string
	max      int64
	open     map[string]*dtm.ExportFile // by kind + "/" + type
	files    []dtm.ExportFile
}

// add counts one change of kind and resource type typ at seq; deletes of
// every type share the "Bundle" parts.
func (c *cutter) add(kind, typ string, seq int64) {
	if kind == dtm.FileDeleted {
		typ = "Bundle"
	}
	key := kind + "/" + typ
	f := c.open[key]
	if f == nil {
		// A part starts just before its first change: nothing of its kind
		// and type lies between the previous part and it, and a tight range
		// is cheaper to stream (a deleted part scans every type in range).
		f = &dtm.ExportFile{Kind: kind, Type: typ, Practice: c.practice, FromSeq: seq - 1}
		c.open[key] = f
	}
	f.Count++
	f.ToSeq = seq
	if f.Count >= c.max {
		c.files = append(c.files, *f)
		delete(c.open, key)
	}
}

// finish closes the open parts and returns every part.
func (c *cutter) finish() []dtm.ExportFile {
	for _, key := range sortedTypes(c.open) {
		c.files = append(c.files, *c.open[key])
	}
	return c.files
}

// planJoiners finds the patients who joined in range (from the Patient
// changes in range only) and packs their earlier records into joiner parts
// per type.
func (p *planner) planJoiners(ctx context.Context, sel *selector, label string) error {
	var joiners []string
	q := dtm.ChangeQuery{Practice: sel.practice, Type: "Patient", Since: p.job.Since, Until: p.job.Until}
	list := p.j.Changes
	if hl, ok := p.j.(HeaderLister); ok {
		list = hl.ChangeHeaders // isJoiner reads no body
	}
	err := list(ctx, q, func(c dtm.Change) error {
		ok, err := sel.isJoiner(ctx, &c)
		if ok {
			joiners = append(joiners, c.ID)
		}
		return err
	})
	if err != nil || len(joiners) == 0 {
		return err
	}
	open := map[string]*dtm.ExportFile{}
	for i, patient := range joiners {
		counts := map[string]int64{}
		if err := sel.scanJoiner(ctx, patient, "", func(c *dtm.Change) error {
			counts[c.Type]++
			return nil
		}); err != nil {
			return err
		}
		for _, typ := range sortedTypes(counts) {
			f := open[typ]
			if f != nil && f.Count+counts[typ] > p.max {
				p.files = append(p.files, *f)
				f = nil
			}
			if f == nil {
				f = &dtm.ExportFile{Kind: dtm.FileOutput, Type: typ, Practice: sel.practice}
				open[typ] = f
			}
			f.Joiners = append(f.Joiners, patient)
			f.Count += counts[typ]
		}
		if (i+1)%100 == 0 {
			if err := p.progress(ctx, fmt.Sprintf("%s: %d of %d new registrations planned", label, i+1, len(joiners))); err != nil {
				return err
			}
		}
	}
	for _, typ := range sortedTypes(open) {
		p.files = append(p.files, *open[typ])
	}
	return nil
}

// numberParts sorts files by practice, kind, type, change parts before
// joiner parts, and sequence, and numbers the parts of each (practice,
// kind, type) from 1.
func numberParts(files []dtm.ExportFile) {
	kindOrder := map[string]int{dtm.FileOutput: 0, dtm.FileDeleted: 1, dtm.FileError: 2}
	slices.SortStableFunc(files, func(a, b dtm.ExportFile) int {
		return cmp.Or(cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]),
			cmp.Compare(a.Practice, b.Practice), cmp.Compare(a.Type, b.Type),
			cmp.Compare(isJoinerPart(a), isJoinerPart(b)), cmp.Compare(a.FromSeq, b.FromSeq))
	})
	for i := range files {
		files[i].Part = 1
		if i > 0 && files[i-1].Kind == files[i].Kind && files[i-1].Practice == files[i].Practice &&
			files[i-1].Type == files[i].Type {
			files[i].Part = files[i-1].Part + 1
		}
	}
}

// sortedTypes returns the keys of m in order.
func sortedTypes[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ignoredParams lists the parameters a lenient request sent that the
// export ignored, recomputed from the recorded request URL so that the
// error file is a pure function of the job.
func ignoredParams(job *dtm.ExportJob) []string {
	if !job.Lenient {
		return nil
	}
	u, err := url.Parse(job.Request)
	if err != nil {
		return nil
	}
	var out []string
	for _, name := range sortedKeys(u.Query()) {
		if !knownParams[name] {
			out = append(out, name)
		}
	}
	return out
}

// isJoinerPart is 1 for a joiner part and 0 for a change part.
func isJoinerPart(f dtm.ExportFile) int {
	if len(f.Joiners) > 0 {
		return 1
	}
	return 0
}
