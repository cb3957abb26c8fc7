package target

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"

	"github.com/dtm-project/dtm/fhir"
)

// SinkNDJSONFormat is the format field of an NDJSON sink's manifest.json.
const SinkNDJSONFormat = "dtm-ndjson-sink/1"

// NDJSONSink stages every applied export as a directory of NDJSON files
// that a supplier's own importer can read:
//
//	DIR/{ods}/{transactionTime}-{pull}/        one applied export (a batch)
//	    {Type}.ndjson                          its resources of that type, the source's JSON, one a line
//	    deleted.ndjson                         {"resourceType":T,"id":I} per deleted resource
//	    manifest.json                          NDJSONManifest: files, counts and SHA-256s
//	DIR/{ods}/.partial-{pull}/                 a batch being written; never read it
//
// {transactionTime} is the export's, in UTC, as 20060102T150405.000000000Z,
// so that listing a practice's directory in name order gives the batches
// in the order they must be applied. A batch is written under .partial-,
// every file synced, manifest.json written last, and the directory then
// renamed into place, so an importer never sees a half-written batch.
// Delivering a batch again (a resumed pull) leaves an existing batch as it
// is. An importer applies each batch's upserts and deletes (the export
// never holds both for one resource), and may remove a batch once applied.
//
// An NDJSONSink is not safe for concurrent Deliver calls for one practice.
type NDJSONSink struct {
	dir       string
	failAfter int // tests: fail after writing this many resources (0: never)
}

var _ Sink = (*NDJSONSink)(nil)

// NDJSONManifest is the manifest.json of a batch of an NDJSON sink.
type NDJSONManifest struct {
	Format          string `json:"format"` // SinkNDJSONFormat
	Pull            string `json:"pull"`
	Source          string `json:"source"`
	Practice        string `json:"practice"`
	Since           string `json:"since,omitempty"` // absent for an initial extract
	TransactionTime string `json:"transactionTime"`
	// Output lists the resource files, in the order to apply them
	// (referenced types first).
	Output []NDJSONFile `json:"output"`
	// Deleted is the deletes file, absent when the export deleted nothing.
	Deleted *NDJSONFile `json:"deleted,omitempty"`
}

// NDJSONFile describes one file of a batch.
type NDJSONFile struct {
	Type   string `json:"type,omitempty"`
	File   string `json:"file"` // name within the batch directory
	Count  int64  `json:"count"`
	SHA256 string `json:"sha256"` // hex digest of the file
}

// NewNDJSONSink returns a sink staging batches under dir, which it
// creates when missing.
func NewNDJSONSink(dir string) (*NDJSONSink, error) {
	if dir == "" {
		return nil, errors.New("ndjson sink: no directory")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("ndjson sink: %w", err)
	}
	return &NDJSONSink{dir: dir}, nil
}

// Name returns "ndjson:" and the directory.
func (s *NDJSONSink) Name() string { return "ndjson:" + s.dir }

// BatchDir returns the directory, relative to the sink's, that holds batch b
// once delivered.
func BatchDir(b *Batch) string {
	return filepath.Join(b.Practice, b.TransactionTime.UTC().Format("20060102T150405.000000000Z")+"-"+b.ID)
}

// Deliver writes b as a batch directory, unless it is there already.
func (s *NDJSONSink) Deliver(ctx context.Context, b *Batch) error {
	final := filepath.Join(s.dir, BatchDir(b))
	if _, err := os.Stat(filepath.Join(final, "manifest.json")); err == nil {
		return nil // delivered before the checkpoint could advance
	}
	parent := filepath.Dir(final)
	tmp := filepath.Join(parent, ".partial-"+b.ID)
	for _, d := range []string{tmp, final} { // leftovers of an interrupted delivery
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return err
	}
	m, err := s.write(ctx, tmp, b)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(tmp, "manifest.json.tmp"), append(data, '\n')); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(tmp, "manifest.json.tmp"), filepath.Join(tmp, "manifest.json")); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(parent)
}

// write writes the batch's files into dir and returns its manifest.
func (s *NDJSONSink) write(ctx context.Context, dir string, b *Batch) (*NDJSONManifest, error) {
	m := &NDJSONManifest{Format: SinkNDJSONFormat, Pull: b.ID, Source: b.Source, Practice: b.Practice,
		TransactionTime: fhir.FormatInstant(b.TransactionTime), Output: []NDJSONFile{}}
	if !b.Since.IsZero() {
		m.Since = fhir.FormatInstant(b.Since)
	}
	files := map[string]*ndjsonWriter{}
	var order []string
	defer func() {
		for _, w := range files {
			w.fh.Close()
		}
	}()
	n := 0
	for r, err := range b.Resources(ctx) {
		if err != nil {
			return nil, err
		}
		w := files[r.Type]
		if w == nil {
			if w, err = newNDJSONWriter(dir, safeName(r.Type)+".ndjson"); err != nil {
				return nil, err
			}
			files[r.Type] = w
			order = append(order, r.Type)
		}
		if err := w.line(r.JSON); err != nil {
			return nil, err
		}
		if n++; n == s.failAfter {
			return nil, errors.New("ndjson sink: failing as the test asked")
		}
	}
	for _, typ := range order {
		f, err := files[typ].close()
		if err != nil {
			return nil, err
		}
		f.Type = typ
		m.Output = append(m.Output, f)
	}
	if len(b.Deletes()) > 0 {
		w, err := newNDJSONWriter(dir, "deleted.ndjson")
		if err != nil {
			return nil, err
		}
		files["(deleted)"] = w
		for _, d := range b.Deletes() {
			line := `{"resourceType":` + strconv.Quote(d.Type) + `,"id":` + strconv.Quote(d.ID) + `}`
			if err := w.line([]byte(line)); err != nil {
				return nil, err
			}
		}
		f, err := w.close()
		if err != nil {
			return nil, err
		}
		m.Deleted = &f
	}
	sort.SliceStable(m.Output, func(i, j int) bool { return typeOrder(m.Output[i].Type, m.Output[j].Type) < 0 })
	return m, nil
}

// ndjsonWriter writes one file of a batch, hashing and counting lines.
type ndjsonWriter struct {
	fh    *os.File
	bw    *bufio.Writer
	h     hash.Hash
	name  string
	count int64
}

func newNDJSONWriter(dir, name string) (*ndjsonWriter, error) {
	fh, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, err
	}
	return &ndjsonWriter{fh: fh, bw: bufio.NewWriterSize(fh, 64<<10), h: sha256.New(), name: name}, nil
}

// line writes one line; line holds no newline (it is compact JSON).
func (w *ndjsonWriter) line(line []byte) error {
	w.h.Write(line)
	w.h.Write([]byte{'\n'})
	w.count++
	if _, err := w.bw.Write(line); err != nil {
		return err
	}
	return w.bw.WriteByte('\n')
}

// close flushes and syncs the file and describes it.
func (w *ndjsonWriter) close() (NDJSONFile, error) {
	if err := w.bw.Flush(); err != nil {
		return NDJSONFile{}, err
	}
	if err := w.fh.Sync(); err != nil {
		return NDJSONFile{}, err
	}
	return NDJSONFile{File: w.name, Count: w.count, SHA256: hex.EncodeToString(w.h.Sum(nil))}, nil
}

// writeSynced writes data to a new file at path and syncs it.
func writeSynced(path string, data []byte) error {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// syncDir makes a directory's entries (renames, new files) durable. It
// does nothing on Windows, which cannot sync a directory handle.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fh, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer fh.Close()
	return fh.Sync()
}
