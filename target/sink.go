package target

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// Sink receives every export the puller has applied to the target store,
// so that a target system other than the built-in store (a supplier's own
// importer, any FHIR R4 server) is kept up to date with the same
// guarantees. The puller calls Deliver after the export's files are
// applied and its attachments verified, and advances the checkpoint only
// once Deliver has returned nil for every configured sink (invariant 4).
type Sink interface {
	// Name identifies the sink in logs and errors ("ndjson:/srv/staging");
	// it never holds credentials.
	Name() string
	// Deliver makes the batch durable at the sink, returning nil only once
	// all of it is. It may be called again with the same batch (same ID)
	// after an error or a crash, before or after an earlier call
	// succeeded, and must then leave the sink as one successful call would
	// (no duplicates, no half batches). The puller never calls Deliver
	// concurrently on one sink.
	Deliver(ctx context.Context, b *Batch) error
}

// Batch is one applied export as a sink sees it: the resources the target
// store accepted (the source's JSON, byte for byte; quarantined ones are
// left out, as they are from the store) and the deletes.
type Batch struct {
	// ID is the pull's id: the same on every delivery of this export.
	ID       string
	Source   string
	Practice string
	// Since is the export's _since (zero for an initial extract) and
	// TransactionTime the instant it is complete as of. Batches of a
	// practice must be applied in TransactionTime order.
	Since, TransactionTime time.Time

	files    []dtm.PullFile  // output files, in delivery order
	excluded map[string]bool // "Type/id" quarantined by this pull
	deletes  []Ref
	counts   map[string]int64
	progress func(typ string)
	bad      func(f dtm.PullFile) error
}

// Resource is one resource of a Batch.
type Resource struct {
	Type, ID string
	// JSON is the source's JSON of the resource; it is not reused by the
	// iteration, so a sink may keep it.
	JSON []byte
}

// Ref names a resource.
type Ref struct{ Type, ID string }

func (r Ref) String() string { return r.Type + "/" + r.ID }

// Counts returns the number of resources of each type Resources yields.
func (b *Batch) Counts() map[string]int64 { return b.counts }

// Deletes returns the resources the export deleted, those of the
// referencing types first (Provenance before Observation before Patient),
// so that a server enforcing referential integrity accepts them in order.
// The slice must not be modified.
func (b *Batch) Deletes() []Ref { return b.deletes }

// Resources yields the batch's resources, those of referenced types first
// (Organization, Practitioner, Patient, Encounter, then the clinical
// types, then Provenance and AuditEvent), a type's resources together. It
// yields a non-nil error, once and last, when a file cannot be read.
func (b *Batch) Resources(ctx context.Context) iter.Seq2[Resource, error] {
	return func(yield func(Resource, error) bool) {
		for _, f := range b.files {
			if err := b.fileResources(ctx, f, yield); err != nil {
				if !errors.Is(err, errStopped) {
					yield(Resource{}, err)
				}
				return
			}
		}
	}
}

var errStopped = errors.New("iteration stopped")

// fileResources yields the accepted resources of one applied output file,
// checking it still is the file that was applied.
func (b *Batch) fileResources(ctx context.Context, f dtm.PullFile, yield func(Resource, error) bool) error {
	fh, err := os.Open(f.Path)
	if err != nil {
		return b.bad(f)
	}
	defer fh.Close()
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(fh, h), 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, rerr := br.ReadBytes('\n')
		if t := bytes.TrimSpace(line); len(t) > 0 {
			hd, err := fhir.ParseHeader(t)
			if err == nil && !b.excluded[hd.ResourceType+"/"+hd.ID] {
				if !yield(Resource{Type: hd.ResourceType, ID: hd.ID, JSON: t}, nil) {
					return errStopped
				}
				b.progress(hd.ResourceType)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		} else if rerr != nil {
			return fmt.Errorf("read %s file: %w", f.Type, rerr)
		}
	}
	if hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return b.bad(f)
	}
	return nil
}

// deliver hands the applied export to every sink, in order. A sink's
// failure leaves the pull resumable: the next attempt delivers the whole
// export again, which sinks must take idempotently.
func (p *Puller) deliver(ctx context.Context, rec *dtm.PullRecord) error {
	if len(p.cfg.Sinks) == 0 {
		return nil
	}
	b, err := p.batch(ctx, rec)
	if err != nil {
		return err
	}
	for _, s := range p.cfg.Sinks {
		var total int64
		for _, n := range b.counts {
			total += n
		}
		p.startTypes("deliver", total, b.counts)
		b.progress = func(typ string) { p.cfg.Progress.Add("deliver", typ, 1) }
		err := s.Deliver(ctx, b)
		p.cfg.Progress.Done("deliver")
		if err != nil {
			return fmt.Errorf("deliver to sink %s: %w", s.Name(), err)
		}
		p.log.Info("export delivered", "pull", rec.ID, "sink", s.Name(), "resources", total, "deletes", len(b.deletes))
	}
	return nil
}

// batch builds the sink view of an applied pull: its output files in
// delivery order, what this pull quarantined (left out), and its deletes.
func (p *Puller) batch(ctx context.Context, rec *dtm.PullRecord) (*Batch, error) {
	files, err := p.cfg.State.Files(ctx, rec.ID)
	if err != nil {
		return nil, fmt.Errorf("list files: %w", err)
	}
	b := &Batch{ID: rec.ID, Source: rec.Source, Practice: rec.Practice, Since: rec.Since,
		TransactionTime: rec.TransactionTime, excluded: map[string]bool{}, counts: map[string]int64{},
		progress: func(string) {}}
	b.bad = func(f dtm.PullFile) error {
		// Fetch and apply it again on the next attempt.
		f.Verified, f.Applied = false, false
		if err := p.cfg.State.SaveFile(context.WithoutCancel(ctx), f); err != nil {
			return fmt.Errorf("save file record: %w", err)
		}
		return fmt.Errorf("%w: %s file %s is missing or changed since it was applied", errCorrupt, f.Kind, f.Type)
	}
	err = p.cfg.State.Quarantined(ctx, rec.Practice, rec.ID, func(q dtm.QuarantineRecord) error {
		if q.Reason == dtm.QuarantineInvalid || q.Reason == dtm.QuarantineRejected {
			b.excluded[q.Type+"/"+q.ID] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	for _, f := range files {
		if !f.Applied {
			return nil, dtm.Errorf(dtm.EInternal, "pull %s delivered before its %s file was applied", rec.ID, f.Type)
		}
		switch f.Kind {
		case dtm.FileOutput:
			b.files = append(b.files, f)
			b.counts[f.Type] += f.Counts.Applied + f.Counts.Skipped
		case dtm.FileDeleted:
			if err := b.readDeletes(f); err != nil {
				return nil, err
			}
		}
	}
	slices.SortStableFunc(b.files, func(x, y dtm.PullFile) int { return typeOrder(x.Type, y.Type) })
	slices.SortStableFunc(b.deletes, func(x, y Ref) int { return typeOrder(y.Type, x.Type) })
	return b, nil
}

// readDeletes adds the well-formed DELETE entries of an applied deleted
// file (malformed ones were quarantined when it was applied).
func (b *Batch) readDeletes(f dtm.PullFile) error {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return b.bad(f)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != f.SHA256 {
		return b.bad(f)
	}
	for line := range bytes.Lines(data) {
		var d deletedBundle
		if line = bytes.TrimSpace(line); len(line) == 0 || json.Unmarshal(line, &d) != nil || d.ResourceType != "Bundle" {
			continue
		}
		for _, e := range d.Entry {
			if typ, id, ok := deleteTarget(e.Request.URL); ok && strings.EqualFold(e.Request.Method, "DELETE") {
				b.deletes = append(b.deletes, Ref{typ, id})
			}
		}
	}
	return nil
}

// deliveryTiers ranks resource types so that a type comes after the types
// its references usually point to. Types not listed rank in the middle
// (tier 5), alphabetically.
var deliveryTiers = map[string]int{
	"Organization": 0, "Location": 0, "Practitioner": 0, "PractitionerRole": 0, "HealthcareService": 0,
	"Endpoint": 0, "Device": 0, "Medication": 0, "Substance": 0,
	"Patient": 1, "RelatedPerson": 1, "Group": 1, "Schedule": 1,
	"Slot": 2, "Binary": 2, "EpisodeOfCare": 2,
	"Appointment":      3,
	"Encounter":        4,
	"DiagnosticReport": 6, "MedicationDispense": 6, "MedicationAdministration": 6, "DocumentReference": 6,
	"Composition": 6, "QuestionnaireResponse": 6, "ImagingStudy": 6,
	"List": 7, "Task": 7, "Communication": 7,
	"Provenance": 8, "AuditEvent": 8,
}

// typeOrder compares two types by delivery tier, then name.
func typeOrder(a, b string) int {
	ta, ok := deliveryTiers[a]
	if !ok {
		ta = 5
	}
	tb, ok := deliveryTiers[b]
	if !ok {
		tb = 5
	}
	if ta != tb {
		return ta - tb
	}
	return strings.Compare(a, b)
}
