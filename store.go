package dtm

import (
	"context"
	"time"
)

// Journal is the append-only, versioned record store of both roles. Every
// write gets a sequence number and a commit time; current state, per-type
// counts and the patient compartment are derived from it.
//
// Ordering guarantee: commits are serialised store-wide, so sequence order is
// commit order and commit times strictly increase with Seq. A snapshot read by
// Head therefore never misses a commit that becomes visible later with a
// lower Seq (see docs/ARCHITECTURE.md, "Exactly once").
//
// Implementations are safe for concurrent use.
type Journal interface {
	// Apply commits the writes for one practice as one atomic batch and
	// returns the snapshot after it. Writes that would change nothing
	// (same content as the current version, a delete of an absent resource,
	// a known Version not newer than the stored one) are skipped. All writes
	// in a batch share one commit time. It returns an EFrozen error when the
	// practice is frozen, and EInvalid for a malformed write.
	Apply(ctx context.Context, practice string, writes []Write) (Commit, error)

	// Head returns the latest committed snapshot.
	Head(ctx context.Context) (Snapshot, error)

	// SnapshotAt returns the latest snapshot whose commit time is at or
	// before t (the zero Snapshot if none), which is how a _since instant
	// maps to a sequence number.
	SnapshotAt(ctx context.Context, t time.Time) (Snapshot, error)

	// Changes calls fn, in Seq order, with the state at q.Until of every
	// resource of q.Practice (and of q.Type, when set) whose latest change
	// at or before q.Until has Seq in (q.Since, q.Until]. Each resource is
	// reported at most once. It stops and returns fn's error if fn fails.
	Changes(ctx context.Context, q ChangeQuery, fn func(Change) error) error

	// Compartment calls fn with the state at seq `at` of every live
	// (not deleted) resource in the patient's compartment, the Patient
	// itself included, in Seq order.
	Compartment(ctx context.Context, practice, patient string, at int64, fn func(Change) error) error

	// State returns the state of one resource at seq `at`: its latest
	// change at or before `at`, which may be a delete (Op == OpDelete). It
	// returns an ENotFound error when the resource had no change by then.
	State(ctx context.Context, practice, typ, id string, at int64) (Change, error)

	// Get returns the current state of one resource, or an ENotFound error
	// when it does not exist or is deleted.
	Get(ctx context.Context, practice, typ, id string) (Change, error)

	// Counts returns the number of live resources per type at seq `at`.
	Counts(ctx context.Context, practice string, at int64) (map[string]int64, error)
}

// ChangeQuery selects changes for Journal.Changes.
type ChangeQuery struct {
	Practice string
	Type     string // "" for every type
	Since    int64  // exclusive
	Until    int64  // inclusive
}

// Store is everything a dtm process keeps: the journal and the practice
// registry. Close releases it; after Close no method may be called.
type Store interface {
	Journal
	Practices
	Close() error
}

// Practices registers the practices a store holds.
type Practices interface {
	// CreatePractice registers a practice (idempotent: an existing one is
	// left unchanged and returned).
	CreatePractice(ctx context.Context, p Practice) (Practice, error)
	// Practice returns one practice or an ENotFound error.
	Practice(ctx context.Context, ods string) (Practice, error)
	// ListPractices returns every practice ordered by ODS code.
	ListPractices(ctx context.Context) ([]Practice, error)
	// SetWatermark records that the DTM holds every change made in the
	// source system up to t (the source system's "complete as of" time).
	// It never moves the watermark backwards.
	SetWatermark(ctx context.Context, ods string, t time.Time) error
	// SetFrozen freezes or unfreezes ingest for a practice.
	SetFrozen(ctx context.Context, ods string, frozen bool) error
}
