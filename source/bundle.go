package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// bundleTypePattern finds a Bundle's type when it is written before its
// entries, as nearly every Bundle does.
var bundleTypePattern = regexp.MustCompile(`"type"\s*:\s*"([a-z-]+)"`)

// loadJSON applies one JSON document: a single resource, or a Bundle. A
// transaction Bundle is applied as one atomic batch (and so is held in
// memory, up to MaxTransactionEntries); batch and collection Bundles are
// applied in batches as they stream. A Bundle whose type cannot be seen
// before its entries is treated as a transaction.
func (in *Ingester) loadJSON(ctx context.Context, practice, name string, br *bufio.Reader) (Stats, error) {
	head, _ := br.Peek(1 << 16)
	if single, ok := singleResource(head, br); ok {
		w, err := ResourceWrite(single)
		if err != nil {
			return Stats{}, &InputError{Name: name, Entry: -1, Err: err}
		}
		b := &batcher{journal: in.Journal, practice: practice, size: 1}
		return b.stats, b.add(ctx, w)
	}
	atomic := true
	if i := bytes.Index(head, []byte(`"entry"`)); i > 0 {
		if m := bundleTypePattern.FindSubmatch(head[:i]); m != nil && string(m[1]) != "transaction" {
			atomic = false
		}
	}
	size := in.batchSize()
	if atomic {
		size = MaxTransactionEntries + 1
	}
	b := &batcher{journal: in.Journal, practice: practice, size: size}
	_, err := fhir.ReadBundle(br, func(e fhir.BundleEntry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if atomic && len(b.writes) >= MaxTransactionEntries {
			return &InputError{Name: name, Entry: e.Index, Err: fmt.Errorf("transaction bundle has more than %d entries; split it or send a batch bundle", MaxTransactionEntries)}
		}
		w, err := bundleWrite(e)
		if err != nil {
			return &InputError{Name: name, Entry: e.Index, Err: err}
		}
		return b.add(ctx, w)
	})
	if err != nil {
		var ie *InputError
		var ee *fhir.EntryError
		switch {
		case errors.As(err, &ie), ctx.Err() != nil:
		case errors.As(err, &ee):
			err = &InputError{Name: name, Entry: ee.Index, Err: ee.Err}
		default:
			err = &InputError{Name: name, Entry: -1, Err: err}
		}
		return b.stats, err
	}
	return b.stats, b.flush(ctx)
}

// singleResource returns the whole input when it is one non-Bundle resource
// that fits in the peeked head.
func singleResource(head []byte, br *bufio.Reader) ([]byte, bool) {
	if len(head) >= 1<<16 {
		return nil, false
	}
	if _, err := br.Peek(len(head) + 1); !errors.Is(err, io.EOF) {
		return nil, false
	}
	h, err := fhir.ParseHeader(bytes.TrimSpace(head))
	if err != nil || h.ResourceType == "Bundle" {
		return nil, false
	}
	compact, err := fhir.Compact(nil, bytes.TrimSpace(head))
	if err != nil {
		return nil, false
	}
	return compact, true
}

// bundleWrite turns a Bundle entry into a journal write.
func bundleWrite(e fhir.BundleEntry) (dtm.Write, error) {
	if e.Method == "DELETE" {
		return dtm.Write{Type: e.ResourceType, ID: e.ID, Op: dtm.OpDelete}, nil
	}
	return ResourceWrite(e.Resource)
}
