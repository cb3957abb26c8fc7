package source

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dtm-project/dtm"
)

// Defaults for an Ingester.
const (
	DefaultBatchSize    = 1000
	DefaultMaxLineBytes = 64 << 20
	// MaxTransactionEntries bounds a transaction Bundle, which is applied as
	// one atomic batch and so held in memory.
	MaxTransactionEntries = 100_000
)

// Ingester writes resources from NDJSON files and FHIR Bundles into a
// practice's journal. It is safe for concurrent use.
type Ingester struct {
	Journal      dtm.Journal
	Logger       *slog.Logger
	BatchSize    int // writes per atomic batch for NDJSON and batch/collection Bundles
	MaxLineBytes int // longest NDJSON line accepted
}

// Stats counts what a load did.
type Stats struct {
	Files    int
	Read     int // resources and deletes read
	Applied  int // new versions or tombstones committed
	Skipped  int // writes that changed nothing (already held)
	Snapshot dtm.Snapshot
}

func (s *Stats) add(c dtm.Commit) {
	s.Applied += c.Applied
	s.Skipped += c.Skipped
	if c.Seq > s.Snapshot.Seq {
		s.Snapshot = c.Snapshot
	}
}

// InputError locates bad input: the file (or request) and the line or
// Bundle entry. Its message never contains record content.
type InputError struct {
	Name  string // file name, or "request"
	Line  int    // 1-based NDJSON line, 0 if not applicable
	Entry int    // 0-based Bundle entry index, -1 if not applicable
	Err   error
}

func (e *InputError) Error() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("%s: line %d: %v", e.Name, e.Line, e.Err)
	case e.Entry >= 0:
		return fmt.Sprintf("%s: entry %d: %v", e.Name, e.Entry, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Name, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

func (in *Ingester) batchSize() int {
	if in.BatchSize > 0 {
		return in.BatchSize
	}
	return DefaultBatchSize
}

// LoadPaths loads files and directories (recursively, in name order; files
// ending .ndjson, .json and either with .gz). It stops at the first bad
// input and returns an *InputError naming the file and line; batches
// committed before it stay committed (re-running after fixing the input
// skips them, because unchanged resources are not written again), and the
// batch holding the bad line is not committed.
func (in *Ingester) LoadPaths(ctx context.Context, practice string, paths []string) (Stats, error) {
	var files []string
	for _, p := range paths {
		found, err := listInputs(p)
		if err != nil {
			return Stats{}, err
		}
		files = append(files, found...)
	}
	var total Stats
	for _, name := range files {
		st, err := in.loadFile(ctx, practice, name)
		total.Files++
		total.Read += st.Read
		total.Applied += st.Applied
		total.Skipped += st.Skipped
		if st.Snapshot.Seq > total.Snapshot.Seq {
			total.Snapshot = st.Snapshot
		}
		if err != nil {
			return total, err
		}
		in.log().Info("loaded file", "file", name, "read", st.Read, "applied", st.Applied, "skipped", st.Skipped)
	}
	return total, nil
}

func (in *Ingester) log() *slog.Logger {
	if in.Logger != nil {
		return in.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// listInputs expands a path into the input files it names.
func listInputs(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(d.Name(), ".gz")
		if !d.IsDir() && (strings.HasSuffix(name, ".ndjson") || strings.HasSuffix(name, ".json")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	sort.Strings(files)
	return files, nil
}

func (in *Ingester) loadFile(ctx context.Context, practice, name string) (Stats, error) {
	f, err := os.Open(name)
	if err != nil {
		return Stats{}, fmt.Errorf("input: %w", err)
	}
	defer f.Close()
	return in.Load(ctx, practice, name, FormatAuto, f)
}

// Input formats for Load.
const (
	FormatAuto   = ""       // from the name: .ndjson is NDJSON, .json a Bundle or resource
	FormatNDJSON = "ndjson" // one resource per line
	FormatJSON   = "json"   // one FHIR Bundle, or one resource
)

// Load reads one input, gzip or not (detected from its first bytes), and
// applies it. name labels errors and, with FormatAuto, picks the format.
func (in *Ingester) Load(ctx context.Context, practice, name, format string, r io.Reader) (Stats, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return Stats{}, &InputError{Name: name, Entry: -1, Err: fmt.Errorf("gzip: %w", err)}
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 1<<16)
	}
	if format == FormatAuto {
		format = FormatJSON
		if strings.HasSuffix(strings.TrimSuffix(name, ".gz"), ".ndjson") {
			format = FormatNDJSON
		}
	}
	if format == FormatNDJSON {
		return in.loadNDJSON(ctx, practice, name, br)
	}
	return in.loadJSON(ctx, practice, name, br)
}
