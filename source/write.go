package source

import (
	"context"
	"fmt"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// ResourceWrite turns one resource into an upsert for the journal: its
// header, and the patient compartment and membership that exports need. It
// returns an fhir input error (fhir.ErrInvalid) for a malformed resource.
func ResourceWrite(resource []byte) (dtm.Write, error) {
	h, err := fhir.ParseHeader(resource)
	if err != nil {
		return dtm.Write{}, err
	}
	w := dtm.Write{Type: h.ResourceType, ID: h.ID, Op: dtm.OpUpsert, JSON: resource}
	if h.ResourceType == "Patient" {
		w.Patient, w.Member = h.ID, fhir.PatientActive(resource)
		return w, nil
	}
	if w.Patient, err = fhir.Compartment(h.ResourceType, resource); err != nil {
		return dtm.Write{}, err
	}
	return w, nil
}

// batcher collects writes and applies them in atomic batches.
type batcher struct {
	journal  dtm.Journal
	practice string
	size     int
	writes   []dtm.Write
	stats    Stats
}

// add queues a write, flushing when the batch is full.
func (b *batcher) add(ctx context.Context, w dtm.Write) error {
	b.stats.Read++
	b.writes = append(b.writes, w)
	if len(b.writes) >= b.size {
		return b.flush(ctx)
	}
	return nil
}

// flush applies the queued writes as one batch.
func (b *batcher) flush(ctx context.Context) error {
	if len(b.writes) == 0 {
		return nil
	}
	c, err := b.journal.Apply(ctx, b.practice, b.writes)
	if err != nil {
		return fmt.Errorf("apply batch: %w", err)
	}
	b.stats.add(c)
	b.writes = b.writes[:0]
	return nil
}
