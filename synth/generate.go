package synth

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// EmitFunc receives one generated resource: its type and its JSON (one
// object, no trailing newline). The slice is only valid during the call;
// copy it to keep it. Returning an error stops generation.
type EmitFunc func(resourceType string, json []byte) error

// Generate streams every resource of the practice described by opts to
// emit: first the practice-level resources (Organizations, Location,
// Practitioners, PractitionerRoles, Schedules), then each patient's whole
// record in patient order. Patients are generated in parallel but emitted
// in order, so the output depends only on opts (not on Workers) and memory
// stays flat. emit is called from a single goroutine. Generate returns the
// first error from emit, ctx.Err() if ctx is cancelled, or an error for
// invalid options.
func Generate(ctx context.Context, opts Options, emit EmitFunc) error {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	p := newPractice(opts)
	var pb batch
	p.emitPractice(&pb)
	if err := pb.each(emit); err != nil {
		return err
	}
	return generatePatients(ctx, p, 0, opts.Patients, emit)
}

// GeneratePatient writes the whole record of the patient with the given
// index (0-based, as in Generate) to emit. It is what Generate emits for
// that patient, byte for byte. It returns the first error from emit.
func GeneratePatient(opts Options, index int, emit EmitFunc) error {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("generate patient: %w", err)
	}
	if index < 0 || index >= maxPatients {
		return fmt.Errorf("generate patient: index %d out of range", index)
	}
	var b batch
	newPgen(newPractice(opts), index, &b).generate()
	return b.each(emit)
}

// generatePatients generates patients [from, to) with a worker pool and
// emits them in index order.
func generatePatients(ctx context.Context, p *practice, from, to int, emit EmitFunc) error {
	if to > maxPatients {
		return fmt.Errorf("generate: at most %d patients", maxPatients)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := p.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	window := 4 * workers
	type job struct {
		idx int
		out chan *batch
	}
	jobs := make(chan job, window)
	queue := make(chan chan *batch, window)
	pool := sync.Pool{New: func() any { return new(batch) }}
	go func() {
		defer close(jobs)
		defer close(queue)
		for i := from; i < to; i++ {
			j := job{idx: i, out: make(chan *batch, 1)}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
			select {
			case queue <- j.out:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				b := pool.Get().(*batch)
				b.reset()
				if ctx.Err() == nil {
					newPgen(p, j.idx, b).generate()
				}
				j.out <- b
			}
		}()
	}
	defer wg.Wait()
	for out := range queue {
		b := <-out
		err := b.each(emit)
		pool.Put(b)
		if err != nil {
			cancel()
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// GenerateRegistrant writes the record of a patient who registers at the
// practice at time at, bringing their whole previous record (dated before
// at) with them: the burst the Simulator emits for a registration. index
// must not be used by another patient (Generate uses 0 to
// opts.Patients-1). It returns the first error from emit.
func GenerateRegistrant(opts Options, index int, at time.Time, emit EmitFunc) error {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("generate registrant: %w", err)
	}
	if index < 0 || index >= maxPatients {
		return fmt.Errorf("generate registrant: index %d out of range", index)
	}
	var b batch
	newRegistrant(newPractice(opts), index, at.UTC().Truncate(time.Second), &b).generate()
	return b.each(emit)
}
