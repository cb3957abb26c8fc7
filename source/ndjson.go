package source

import (
	"context"
	"errors"
	"io"

	"github.com/dtm-project/dtm/fhir"
)

// loadNDJSON applies an NDJSON stream in batches. Each line is copied, since
// the reader reuses its buffer.
func (in *Ingester) loadNDJSON(ctx context.Context, practice, name string, r io.Reader) (Stats, error) {
	maxLine := in.MaxLineBytes
	if maxLine <= 0 {
		maxLine = DefaultMaxLineBytes
	}
	rd := fhir.NewNDJSONReader(r, fhir.NDJSONOptions{MaxLineBytes: maxLine})
	b := &batcher{journal: in.Journal, practice: practice, size: in.batchSize()}
	for {
		line, lineNo, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var le *fhir.LineError
			if errors.As(err, &le) {
				return b.stats, &InputError{Name: name, Line: le.Line, Entry: -1, Err: le.Err}
			}
			return b.stats, &InputError{Name: name, Entry: -1, Err: err}
		}
		w, err := ResourceWrite(append([]byte(nil), line...))
		if err != nil {
			return b.stats, &InputError{Name: name, Line: lineNo, Entry: -1, Err: err}
		}
		if err := b.add(ctx, w); err != nil {
			return b.stats, err
		}
	}
	return b.stats, b.flush(ctx)
}
