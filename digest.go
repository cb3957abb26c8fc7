package dtm

import "context"

// NoPatient is the digest bucket of resources in no patient's compartment
// (practitioners, organisations, locations, ...).
const NoPatient = ""

// Digest proves what a practice held at one snapshot without sending it
// (invariant 5). Both roles compute it the same way (package reconcile)
// over the resources a Group export at that snapshot carries:
//
//   - every live resource is one line "Type/id/contenthash\n", where the
//     content hash is fhir.ContentHash (canonical JSON without
//     meta.versionId and meta.lastUpdated);
//   - lines are grouped in buckets by compartment patient (Change.Patient),
//     resources in no compartment in bucket NoPatient;
//   - a bucket's digest is the lower-case hex SHA-256 of its lines sorted
//     bytewise and concatenated;
//   - Root is the hex SHA-256 of the lines "patient:digest\n" of every
//     non-empty bucket, sorted bytewise.
//
// Group scope, as in the export (invariant 3): the compartment of a patient
// whose Patient resource exists at the snapshot but is deducted (not a
// member) or deleted holds only the Patient resource itself; the rest is
// counted in Excluded, not in Counts.
type Digest struct {
	Practice string
	Snapshot Snapshot         // the journal snapshot it was computed at
	Counts   map[string]int64 // live resources per type in the digest
	Total    int64            // sum of Counts
	Excluded int64            // live resources left out of Group scope
	Root     string
	Buckets  map[string]string // patient id (NoPatient for none) → bucket digest
}

// DigestEntry is one line of a digest bucket: a live resource, with its
// version for people (the version is not part of the digest: the target
// keeps the source's versions, but the digest proves content).
type DigestEntry struct {
	Type    string
	ID      string
	Version int64
	Hash    string // fhir.ContentHash of the resource
}

// DigestLister is an optional extension of Journal that makes digests of
// large practices cheap: package reconcile uses it when the journal
// implements it, and Journal.Changes otherwise. Both stores (sqlite,
// postgres) implement it from stored columns (content hash, compartment
// patient), reading no resource body; see docs/RECONCILIATION.md.
type DigestLister interface {
	// DigestChanges calls fn with the state at seq `at` (capped at Head)
	// of every resource of the practice (deletes included) whose state at
	// `at` exists, ordered by Change.Patient (bytewise, so NoPatient
	// first), with JSON left nil and every other field as Changes reports
	// it. It returns fn's error unwrapped when fn fails.
	DigestChanges(ctx context.Context, practice string, at int64, fn func(Change) error) error
}
