package target

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/dtm-project/dtm"
)

// apply loads every verified file of the pull not yet applied, one file
// after another, recording each file with its counts once its last batch
// has committed. Re-applying a file is harmless: writes carry the source's
// version, deletes of absent resources and quarantine records are
// idempotent.
func (p *Puller) apply(ctx context.Context, rec *dtm.PullRecord) error {
	files, err := p.cfg.State.Files(ctx, rec.ID)
	if err != nil {
		return fmt.Errorf("list files: %w", err)
	}
	if _, err := p.cfg.Store.CreatePractice(ctx, dtm.Practice{ODS: rec.Practice, Name: rec.Practice}); err != nil {
		return fmt.Errorf("register practice: %w", err)
	}
	v, err := p.validator(ctx, rec, files)
	if err != nil {
		return err
	}
	var total int64
	totals := map[string]int64{}
	for _, f := range files {
		if !f.Applied {
			total += f.Lines
			totals[progressType(f)] += f.Lines
		}
	}
	p.startTypes("apply", total, totals)
	defer p.cfg.Progress.Done("apply")
	for i, f := range files {
		if f.Applied {
			continue
		}
		if !f.Verified {
			return dtm.Errorf(dtm.EInternal, "file %d of pull %s applied before it was verified", i+1, rec.ID)
		}
		c, err := p.applyFile(ctx, rec, f, v)
		if errors.Is(err, errCorrupt) {
			// Fetch it again on the next attempt.
			f.Verified = false
			if serr := p.cfg.State.SaveFile(ctx, f); serr != nil {
				return fmt.Errorf("save file record: %w", serr)
			}
		}
		if err != nil {
			return fmt.Errorf("apply %s file %d (%s): %w", f.Kind, i+1, f.Type, err)
		}
		f.Applied, f.Counts = true, c
		if err := p.cfg.State.SaveFile(ctx, f); err != nil {
			return fmt.Errorf("save file record: %w", err)
		}
	}
	return p.sumCounts(ctx, rec)
}

// validator returns the pull's validator: Config.NewValidator's with a
// resolver over the pull's delta and the store, else Config.Validator
// (which may be nil: no validation).
func (p *Puller) validator(ctx context.Context, rec *dtm.PullRecord, files []dtm.PullFile) (Validator, error) {
	if p.cfg.NewValidator == nil {
		return p.cfg.Validator, nil
	}
	r, err := p.newResolver(ctx, rec, files)
	if err != nil {
		return nil, err
	}
	v, err := p.cfg.NewValidator(r.resolve)
	if err != nil {
		return nil, fmt.Errorf("new validator: %w", err)
	}
	return v, nil
}

// chunk is a run of lines of one file.
type chunk struct {
	first int64 // line number of lines[0]
	lines [][]byte
}

// applyFile streams one file through parallel decoding and validation into
// store batches; lines the store already holds unchanged are not validated
// again (heldLines). It checks the file against its recorded SHA-256 and line
// count, and that every resource received was applied, skipped or
// quarantined (invariant 5).
func (p *Puller) applyFile(ctx context.Context, rec *dtm.PullRecord, f dtm.PullFile, v Validator) (dtm.PullCounts, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	chunks := make(chan chunk, p.cfg.Parallel)
	results := make(chan *decoded, p.cfg.Parallel)
	var sum string
	var lines int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(chunks)
		var err error
		if sum, lines, err = p.readChunks(ctx, f.Path, chunks); err != nil {
			cancel(err)
		}
	}()
	var workers sync.WaitGroup
	for range p.cfg.Parallel {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for ch := range chunks {
				d := &decoded{}
				var held []bool
				if v != nil && f.Kind == dtm.FileOutput {
					held = p.heldLines(ctx, rec.Practice, ch)
				}
				for i, line := range ch.lines {
					if held != nil && held[i] {
						d.counts.Received++
						d.counts.Skipped++
						continue
					}
					p.decodeLine(lineRef{rec.ID, rec.Practice, f, ch.first + int64(i)}, line, v, d)
				}
				select {
				case results <- d:
				case <-ctx.Done():
				}
			}
		}()
	}
	go func() { workers.Wait(); close(results) }()
	var c dtm.PullCounts
	for d := range results {
		if ctx.Err() != nil {
			continue // drain
		}
		if err := p.commit(ctx, rec, f, d, &c); err != nil {
			cancel(err)
		}
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return c, err
	}
	return c, checkFile(f, sum, lines, c)
}

// errCorrupt marks a downloaded file that changed on disk after it was
// verified; it is downloaded again.
var errCorrupt = errors.New("downloaded file changed on disk")

// checkFile verifies a file after it was applied.
func checkFile(f dtm.PullFile, sum string, lines int64, c dtm.PullCounts) error {
	switch {
	case sum != f.SHA256 || lines != f.Lines:
		return fmt.Errorf("%w: SHA-256 or line count differs from the download's", errCorrupt)
	case c.Received != c.Applied+c.Skipped+c.Quarantined:
		return dtm.Errorf(dtm.EInternal, "received %d, but applied %d + skipped %d + quarantined %d",
			c.Received, c.Applied, c.Skipped, c.Quarantined)
	}
	return nil
}

// maxChunkBytes bounds the JSON held by one chunk, so that files of large
// resources (Binary) keep memory flat.
const maxChunkBytes = 8 << 20

// readChunks reads the non-blank lines of the file at path into chunks of
// BatchSize lines or maxChunkBytes, returning the file's SHA-256 and line
// count.
func (p *Puller) readChunks(ctx context.Context, path string, out chan<- chunk) (string, int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer fh.Close()
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(fh, h), 1<<20)
	var n, size int64
	ch := chunk{first: 1}
	for {
		line, err := br.ReadBytes('\n')
		if t := bytes.TrimSpace(line); len(t) > 0 {
			n++
			size += int64(len(t))
			ch.lines = append(ch.lines, t)
		}
		if len(ch.lines) == p.cfg.BatchSize || size >= maxChunkBytes || (err != nil && len(ch.lines) > 0) {
			select {
			case out <- ch:
			case <-ctx.Done():
				return "", 0, ctx.Err()
			}
			ch, size = chunk{first: n + 1}, 0
		}
		if errors.Is(err, io.EOF) {
			return hex.EncodeToString(h.Sum(nil)), n, nil
		} else if err != nil {
			return "", 0, err
		}
	}
}

// commit applies one decoded chunk: the quarantine records, then the
// writes in one store transaction. When the store rejects the batch as
// invalid, the writes are applied one by one and those it rejects are
// quarantined, so one bad resource cannot block a migration.
func (p *Puller) commit(ctx context.Context, rec *dtm.PullRecord, f dtm.PullFile, d *decoded, c *dtm.PullCounts) error {
	addCounts(c, d.counts)
	if len(d.writes) > 0 {
		cm, err := p.cfg.Store.Apply(ctx, rec.Practice, d.writes)
		switch {
		case err == nil:
			c.Applied += int64(cm.Applied)
			c.Skipped += int64(cm.Skipped)
		case dtm.ErrorCode(err) == dtm.EInvalid && len(d.writes) > 1:
			p.applyOneByOne(ctx, rec, f, d, c)
		case dtm.ErrorCode(err) == dtm.EInvalid:
			c.Quarantined++
			d.quarantine = append(d.quarantine, p.rejected(rec, d.writes[0], err))
		default:
			return fmt.Errorf("apply batch: %w", err)
		}
	}
	if len(d.quarantine) > 0 {
		if err := p.cfg.State.Quarantine(ctx, d.quarantine); err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
	}
	p.cfg.Progress.Add("apply", progressType(f), d.counts.Received+d.counts.SourceErrors)
	return ctx.Err()
}

// applyOneByOne applies a batch's writes singly after the store refused
// the batch, quarantining each write it refuses.
func (p *Puller) applyOneByOne(ctx context.Context, rec *dtm.PullRecord, f dtm.PullFile, d *decoded, c *dtm.PullCounts) {
	for _, w := range d.writes {
		cm, err := p.cfg.Store.Apply(ctx, rec.Practice, []dtm.Write{w})
		if err != nil {
			p.log.Warn("target store refused a resource; quarantined", "pull", rec.ID, "type", w.Type, "err", dtm.ErrorMessage(err))
			c.Quarantined++
			d.quarantine = append(d.quarantine, p.rejected(rec, w, err))
			continue
		}
		c.Applied += int64(cm.Applied)
		c.Skipped += int64(cm.Skipped)
	}
}

// rejected is the quarantine record of a write the store refused.
func (p *Puller) rejected(rec *dtm.PullRecord, w dtm.Write, err error) dtm.QuarantineRecord {
	return dtm.QuarantineRecord{
		Pull: rec.ID, Practice: rec.Practice, Reason: dtm.QuarantineRejected, Type: w.Type, ID: w.ID,
		Version: w.Version, JSON: w.JSON, At: p.cfg.Clock.Now(),
		Outcome: outcome("error", "processing", "target store refused the write: "+dtm.ErrorMessage(err)),
	}
}

// progressType labels a file's progress: its resource type, or
// "(deleted)" or "(errors)" for the files of those kinds.
func progressType(f dtm.PullFile) string {
	switch f.Kind {
	case dtm.FileDeleted:
		return "(deleted)"
	case dtm.FileError:
		return "(errors)"
	}
	return f.Type
}

// sumCounts sets the pull's counts to the sum over its files.
func (p *Puller) sumCounts(ctx context.Context, rec *dtm.PullRecord) error {
	files, err := p.cfg.State.Files(ctx, rec.ID)
	if err != nil {
		return fmt.Errorf("list files: %w", err)
	}
	att, prob := rec.Counts.Attachments, rec.Counts.AttachmentProblems
	rec.Counts = dtm.PullCounts{Attachments: att, AttachmentProblems: prob}
	for _, f := range files {
		addCounts(&rec.Counts, f.Counts)
		rec.Counts.Files++
		rec.Counts.Bytes += f.Bytes
	}
	return p.save(ctx, rec)
}

// addCounts adds b's record counts to a.
func addCounts(a *dtm.PullCounts, b dtm.PullCounts) {
	a.Received += b.Received
	a.Applied += b.Applied
	a.Skipped += b.Skipped
	a.Deleted += b.Deleted
	a.Quarantined += b.Quarantined
	a.Warnings += b.Warnings
	a.SourceErrors += b.SourceErrors
}
