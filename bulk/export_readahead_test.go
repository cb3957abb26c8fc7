package bulk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/storetest"
)

// loadMixed fills PracticeA with registered and deducted patients,
// Observations (some updated, some deleted; ~1.5 KB each, so that a
// segment fills several buffers) and practitioners, committed in many
// small batches so that every type spreads over the journal.
func loadMixed(e *testEnv) {
	ob := func(i, n int) dtm.Write {
		id, pat := fmt.Sprint("o", i), fmt.Sprint("p", i%6)
		return storetest.Upsert("Observation", id, pat, storetest.ResourceJSON(id, pat, n))
	}
	for i := range 6 {
		e.apply(pA, patient(fmt.Sprint("p", i), i != 3)) // p3 deducted
	}
	for i := range 600 {
		ws := []dtm.Write{ob(i, i)}
		switch {
		case i%7 == 0 && i > 0:
			ws = append(ws, storetest.Delete("Observation", fmt.Sprint("o", i-1)))
		case i%5 == 0:
			ws = append(ws, ob(i/2, 1000+i))
		case i%11 == 0:
			ws = append(ws, practitioner(fmt.Sprint("pr", i)))
		}
		e.apply(pA, ws...)
	}
}

// exportJob runs an export at path and returns its stored job.
func (e *testEnv) exportJob(path string) *dtm.ExportJob {
	e.tb.Helper()
	loc := e.kickoff(path)
	e.wait(loc)
	job, err := e.db.Job(e.ctx, loc[strings.LastIndex(loc, "/")+1:])
	if err != nil {
		e.tb.Fatal(err)
	}
	return &job
}

// renderWhole returns file f rendered in one scan.
func renderWhole(t *testing.T, s *Server, job *dtm.ExportJob, f dtm.ExportFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := s.renderRange(context.Background(), job, f, f.FromSeq, f.ToSeq, func(line []byte) error {
		buf.Write(line)
		return buf.WriteByte('\n')
	})
	if err != nil || n != f.Count {
		t.Fatalf("renderRange %s part %d: %d lines (manifest %d), %v", f.Type, f.Part, n, f.Count, err)
	}
	return buf.Bytes()
}

func TestWriteSegments_SameBytes(t *testing.T) {
	testWriteSegmentsSameBytes(t, newTestEnv(t, true, nil))
}

func TestWriteSegments_SameBytes_Postgres(t *testing.T) {
	testWriteSegmentsSameBytes(t, newPostgresEnv(t, true, nil))
}

// testWriteSegmentsSameBytes checks that every change part of a Group and
// a system export, written in segments read ahead, has the bytes of one
// scan of it, whatever the cuts.
func testWriteSegmentsSameBytes(t *testing.T, e *testEnv) {
	loadMixed(e)
	for _, path := range []string{"/fhir/Group/" + pA + "/$export", "/fhir/$export"} {
		job := e.exportJob(path)
		// Later commits are outside the export and change nothing.
		e.apply(pA, obs("o5", "p5", "7"), storetest.Delete("Observation", "o6"), patient("p4", false))
		for _, f := range job.Files {
			if f.Kind == dtm.FileError || len(f.Joiners) > 0 {
				continue
			}
			want := renderWhole(t, e.srv, job, f)
			for _, cuts := range []int{2, 3, 7, 40} {
				var buf bytes.Buffer
				w := bufio.NewWriter(&buf)
				n, err := e.srv.writeSegments(e.ctx, job, f, splitRange(f.FromSeq, f.ToSeq, cuts, 1), w)
				if err == nil {
					err = w.Flush()
				}
				if err != nil || n != f.Count || !bytes.Equal(buf.Bytes(), want) {
					t.Fatalf("%s %s part %d in %d segments: %d lines (want %d), %d bytes (want %d), equal %v, %v",
						path, f.Type, f.Part, cuts, n, f.Count, buf.Len(), len(want), bytes.Equal(buf.Bytes(), want), err)
				}
			}
			if len(e.srv.readAhead) != 0 {
				t.Fatalf("%d read-ahead tokens still held", len(e.srv.readAhead))
			}
		}
	}
}

// failingAfter is a journal whose Changes fails at the first change after
// seq.
type failingAfter struct {
	testStore
	seq int64
}

var errJournal = errors.New("journal read failed")

func (j failingAfter) Changes(ctx context.Context, q dtm.ChangeQuery, fn func(dtm.Change) error) error {
	return j.testStore.Changes(ctx, q, func(c dtm.Change) error {
		if c.Seq > j.seq {
			return errJournal
		}
		return fn(c)
	})
}

// failingWriter fails every write after the first n bytes.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, io.ErrClosedPipe
	}
	return len(p), nil
}

func TestWriteSegments_Errors(t *testing.T) {
	e := newTestEnv(t, true, nil)
	loadMixed(e)
	job := e.exportJob("/fhir/Group/" + pA + "/$export")
	var f dtm.ExportFile
	for _, g := range job.Files {
		if g.Type == "Observation" && g.Kind == dtm.FileOutput {
			f = g
		}
	}
	ranges := splitRange(f.FromSeq, f.ToSeq, 8, 1)
	t.Run("ErrJournal", func(t *testing.T) {
		s := NewServer(Config{Journal: failingAfter{e.db, ranges[5][0] + 3}, Practices: e.db, Jobs: e.db,
			BaseURL: "http://x", Logger: discardLogger()})
		n, err := s.writeSegments(e.ctx, job, f, ranges, bufio.NewWriter(io.Discard))
		if !errors.Is(err, errJournal) || n == 0 || n >= f.Count {
			t.Fatalf("writeSegments = %d lines (of %d), %v; want some, then the journal's error", n, f.Count, err)
		}
		if len(s.readAhead) != 0 {
			t.Fatalf("%d read-ahead tokens still held", len(s.readAhead))
		}
	})
	t.Run("ErrWrite", func(t *testing.T) {
		n, err := e.srv.writeSegments(e.ctx, job, f, ranges, bufio.NewWriterSize(&failingWriter{n: 100 << 10}, 4096))
		if !errors.Is(err, io.ErrClosedPipe) || n >= f.Count {
			t.Fatalf("writeSegments = %d lines, %v; want the writer's error", n, err)
		}
		if len(e.srv.readAhead) != 0 {
			t.Fatalf("%d read-ahead tokens still held", len(e.srv.readAhead))
		}
	})
	t.Run("ErrCancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		if _, err := e.srv.writeSegments(ctx, job, f, ranges, bufio.NewWriter(io.Discard)); !errors.Is(err, context.Canceled) {
			t.Fatalf("writeSegments = %v, want context.Canceled", err)
		}
	})
}
