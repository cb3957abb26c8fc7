package target

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// resolver answers the validator's question "does Type/id exist in the
// delta being applied or in the target store?" (T4). The delta's ids are
// read from the pull's output files before anything is applied; ids
// outside it are looked up in the store once and remembered. It is safe
// for concurrent use.
type resolver struct {
	ctx      context.Context
	store    dtm.Store
	practice string
	delta    map[string]struct{} // "Type/id" of every output resource
	cache    sync.Map            // "Type/id" -> bool, for store lookups
}

// newResolver indexes the ids of the pull's output files.
func (p *Puller) newResolver(ctx context.Context, rec *dtm.PullRecord, files []dtm.PullFile) (*resolver, error) {
	r := &resolver{ctx: ctx, store: p.cfg.Store, practice: rec.Practice, delta: map[string]struct{}{}}
	for _, f := range files {
		if f.Kind != dtm.FileOutput || !f.Verified {
			continue
		}
		if err := r.index(f.Path); err != nil {
			return nil, fmt.Errorf("index %s file (%s): %w", f.Kind, f.Type, err)
		}
	}
	return r, nil
}

// index adds the ids of one NDJSON file to the delta.
func (r *resolver) index(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	br := bufio.NewReaderSize(fh, 1<<20)
	for {
		line, rerr := br.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			if h, err := fhir.ParseHeader(line); err == nil {
				r.delta[h.ResourceType+"/"+h.ID] = struct{}{}
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		} else if rerr != nil {
			return rerr
		}
	}
}

// resolve reports whether ref ("Type/id") is in the delta or the store. A
// store failure counts as resolved: it must not quarantine data (the
// failure shows up again where it matters, when applying).
func (r *resolver) resolve(ref string) bool {
	if _, ok := r.delta[ref]; ok {
		return true
	}
	if v, ok := r.cache.Load(ref); ok {
		return v.(bool)
	}
	typ, id, _ := strings.Cut(ref, "/")
	_, err := r.store.Get(r.ctx, r.practice, typ, id)
	found := err == nil || dtm.ErrorCode(err) != dtm.ENotFound
	if err == nil || !found {
		r.cache.Store(ref, found)
	}
	return found
}
