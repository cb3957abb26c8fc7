package synth

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Stats summarises a generated practice.
type Stats struct {
	Resources map[string]int // resources written per type
	Total     int            // all resources
	Bytes     int64          // uncompressed NDJSON bytes
	Elapsed   time.Duration
	Files     []string // files written, sorted
}

// Rate returns resources per second.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Total) / s.Elapsed.Seconds()
}

// ndjsonFile is one output file per resource type.
type ndjsonFile struct {
	f  *os.File
	gz *gzip.Writer
	w  *bufio.Writer
}

func (n *ndjsonFile) close() error {
	err := n.w.Flush()
	if n.gz != nil {
		err = errors.Join(err, n.gz.Close())
	}
	return errors.Join(err, n.f.Close())
}

// WriteNDJSON generates the practice into dir (created if missing) as one
// file per resource type, "<Type>.ndjson" or, with gz, "<Type>.ndjson.gz",
// one resource per newline-terminated line. Existing files of those names
// are replaced. It returns what it wrote; on error the files may be
// incomplete.
func WriteNDJSON(ctx context.Context, opts Options, dir string, gz bool) (Stats, error) {
	start := time.Now()
	st := Stats{Resources: map[string]int{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, fmt.Errorf("write ndjson: %w", err)
	}
	files := map[string]*ndjsonFile{}
	emit := func(typ string, js []byte) error {
		nf := files[typ]
		if nf == nil {
			var err error
			if nf, err = createNDJSON(dir, typ, gz); err != nil {
				return err
			}
			files[typ] = nf
			st.Files = append(st.Files, nf.f.Name())
		}
		st.Resources[typ]++
		st.Total++
		st.Bytes += int64(len(js)) + 1
		nf.w.Write(js)
		return nf.w.WriteByte('\n')
	}
	err := Generate(ctx, opts, emit)
	for _, nf := range files {
		err = errors.Join(err, nf.close())
	}
	sort.Strings(st.Files)
	st.Elapsed = time.Since(start)
	if err != nil {
		return st, fmt.Errorf("write ndjson: %w", err)
	}
	return st, nil
}

func createNDJSON(dir, typ string, gz bool) (*ndjsonFile, error) {
	name := typ + ".ndjson"
	if gz {
		name += ".gz"
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	nf := &ndjsonFile{f: f}
	var w io.Writer = f
	if gz {
		nf.gz, _ = gzip.NewWriterLevel(f, gzip.BestSpeed)
		w = nf.gz
	}
	nf.w = bufio.NewWriterSize(w, 256<<10)
	return nf, nil
}
