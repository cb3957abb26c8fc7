package bulk

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// gzipLevel is fixed so that a retried download compresses identically.
const gzipLevel = gzip.BestSpeed

// handleFile streams one NDJSON file of a complete export, gzipped when
// the client accepts gzip. The bytes are the same on every retry until the
// export expires: the content is a pure function of the job and the file.
func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	job, f, err := s.ownedFile(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/fhir+ndjson")
	h.Set("Vary", "Accept-Encoding")
	h.Set("Expires", job.ExpiresAt.UTC().Format(http.TimeFormat))
	cw := &countingWriter{w: w}
	var out io.Writer = cw
	var zw *gzip.Writer
	if acceptsGzip(r.Header.Values("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		zw, _ = gzip.NewWriterLevel(cw, gzipLevel)
		out = zw
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	n, err := s.writeFile(r.Context(), &job, f, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err == nil && n != f.Count {
		err = fmt.Errorf("file has %d resources, manifest says %d", n, f.Count)
	}
	if err != nil && cw.n == 0 {
		h.Del("Content-Encoding")
		s.fail(w, r, fmt.Errorf("export file %d of job %s: %w", f.Part, job.ID, err))
		return
	}
	if err != nil {
		// The status line is gone: abort the connection so that the client
		// sees a failed transfer, never a silently short file.
		s.cfg.Logger.ErrorContext(r.Context(), "export file stream failed", "job", job.ID, "file", f.Part, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// ownedFile returns the caller's complete job and the file named in the
// request path, or ENotFound.
func (s *Server) ownedFile(r *http.Request) (dtm.ExportJob, dtm.ExportFile, error) {
	job, err := s.ownedJob(r)
	if err != nil {
		return job, dtm.ExportFile{}, err
	}
	name := r.PathValue("file")
	num, _, _ := strings.Cut(name, "-")
	i, err := strconv.Atoi(num)
	if err != nil || job.Status != dtm.JobComplete || i < 1 || i > len(job.Files) || fileName(i-1, job.Files[i-1]) != name {
		return job, dtm.ExportFile{}, dtm.Errorf(dtm.ENotFound, "no such export file")
	}
	return job, job.Files[i-1], nil
}

// writeFile writes the NDJSON content of file f of job to w and returns the
// number of lines written. A large change part is read in segments, some
// ahead of the writer (see writeSegments); the bytes are the same either way.
func (s *Server) writeFile(ctx context.Context, job *dtm.ExportJob, f dtm.ExportFile, w *bufio.Writer) (int64, error) {
	emit := func(line []byte) error {
		w.Write(line)
		return w.WriteByte('\n')
	}
	switch {
	case f.Kind == dtm.FileError:
		var n int64
		for _, name := range ignoredParams(job) {
			n++
			if err := emit(ignoredOutcome(name)); err != nil {
				return n, err
			}
		}
		return n, nil
	case len(f.Joiners) > 0:
		return s.renderJoiners(ctx, job, f, emit)
	}
	ranges := splitRange(f.FromSeq, f.ToSeq, int(f.Count/segmentRows), 1)
	if len(ranges) == 1 || cap(s.readAhead) == 0 {
		return s.renderRange(ctx, job, f, f.FromSeq, f.ToSeq, emit)
	}
	return s.writeSegments(ctx, job, f, ranges, w)
}

// renderJoiners calls emit with the line of every resource of joiner part
// f and returns how many there were.
func (s *Server) renderJoiners(ctx context.Context, job *dtm.ExportJob, f dtm.ExportFile, emit func([]byte) error) (int64, error) {
	var n int64
	sel := newSelector(s.selectorJournal(), job, f.Practice)
	for _, patient := range f.Joiners {
		err := sel.scanJoiner(ctx, patient, f.Type, func(c *dtm.Change) error {
			n++
			return emit(renderLine(c))
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// renderRange calls emit, in seq order, with the line of every change of
// change part f (of kind f.Kind) with seq in (from, to], a sub-range of
// (f.FromSeq, f.ToSeq], and returns how many there were. The lines of
// consecutive sub-ranges, concatenated, are the lines of their union:
// which changes an export keeps depends on the job's snapshot, not on the
// range scanned.
func (s *Server) renderRange(ctx context.Context, job *dtm.ExportJob, f dtm.ExportFile, from, to int64, emit func([]byte) error) (int64, error) {
	var n int64
	sel := newSelector(s.selectorJournal(), job, f.Practice)
	typ := f.Type
	if f.Kind == dtm.FileDeleted {
		typ = "" // deleted files carry every type
	}
	deleted := f.Kind == dtm.FileDeleted // needs no resource bodies
	err := sel.scanChanges(ctx, typ, from, deleted, func(c *dtm.Change) error {
		if c.Seq > to {
			return errStop
		}
		if fileKind(c) != f.Kind {
			return nil
		}
		n++
		return emit(renderLine(c))
	})
	return n, err
}

// renderLine returns the NDJSON line of a change: a deleted Bundle for a
// delete, else the stored resource on one line.
func renderLine(c *dtm.Change) []byte {
	if c.Op == dtm.OpDelete {
		return deletedBundle(c)
	}
	return oneLine(c.JSON)
}

// oneLine returns a resource's stored JSON unchanged (invariant 6), unless
// it spans lines, when insignificant whitespace is removed (json.Compact
// keeps every string and number literal byte for byte) so that NDJSON stays
// one resource per line.
func oneLine(resource []byte) []byte {
	if bytes.IndexByte(resource, '\n') < 0 && bytes.IndexByte(resource, '\r') < 0 {
		return resource
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, resource); err != nil {
		return resource
	}
	return buf.Bytes()
}

// deletedBundle renders the deleted-file line of a delete: a transaction
// Bundle with one DELETE entry, stamped with the commit time of the delete.
func deletedBundle(c *dtm.Change) []byte {
	url, _ := json.Marshal(c.Type + "/" + c.ID)
	b := make([]byte, 0, 160)
	b = append(b, `{"resourceType":"Bundle","type":"transaction","timestamp":"`...)
	b = append(b, fhir.FormatInstant(c.CommitTime)...)
	b = append(b, `","entry":[{"request":{"method":"DELETE","url":`...)
	b = append(b, url...)
	return append(b, `}}]}`...)
}

// ignoredOutcome renders the error-file line for an ignored parameter.
func ignoredOutcome(name string) []byte {
	return fhir.OperationOutcome(fhir.OutcomeIssue{Severity: "warning", Code: "not-supported",
		Diagnostics: fmt.Sprintf("parameter %s is not supported and was ignored (Prefer: handling=lenient)", name)})
}

// acceptsGzip reports whether Accept-Encoding admits gzip (q > 0).
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			if q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000" {
				return false
			}
			return true
		}
	}
	return false
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

// Write implements io.Writer.
func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
