package dtm

import "time"

// Op says what a change did to a resource.
type Op int

const (
	OpUpsert Op = iota // created or updated
	OpDelete           // deleted (a tombstone)
)

// String returns "upsert" or "delete".
func (o Op) String() string {
	if o == OpDelete {
		return "delete"
	}
	return "upsert"
}

// Write is one requested change to a practice's records, as given to
// Store.Apply.
type Write struct {
	Type string // FHIR resource type, e.g. "Patient"
	ID   string // logical id
	Op   Op
	// JSON is the resource as received, for OpUpsert; nil for OpDelete.
	// Its meta.versionId and meta.lastUpdated are replaced by the store.
	JSON []byte
	// Version, when non-zero, is the version the writer already knows
	// (the target applying a source version). The store then keeps that
	// version and stores JSON exactly as given (meta included), and skips
	// the write if it holds the same or a newer version, so that
	// re-applying old data never regresses a record.
	Version int64
	// Patient is the id of the patient whose compartment the resource is
	// in ("" when none). Filled by the ingest layer (fhir.Compartment).
	Patient string
	// Member is, for Patient resources only, whether the patient is a
	// registered member of the practice (not deducted).
	Member bool
}

// Change is one row of the journal: a committed create, update or delete.
type Change struct {
	Seq        int64 // journal sequence number, unique and increasing store-wide
	Practice   string
	Type       string
	ID         string
	Op         Op
	Version    int64
	CommitTime time.Time
	Patient    string
	Member     bool   // for Patient resources: registered member at this version
	Hash       string // content hash (fhir.ContentHash) of JSON; "" for deletes
	JSON       []byte // the resource with its meta stamped; nil for deletes
}

// Snapshot names a consistent point in the journal: every change with
// Seq <= Seq is committed and visible, and none after it is. Time is the
// commit time of change Seq (the zero snapshot has zero time).
type Snapshot struct {
	Seq  int64
	Time time.Time
}

// Commit reports the result of Store.Apply.
type Commit struct {
	Snapshot     // the snapshot right after the batch; zero if nothing changed
	Applied  int // writes that produced a new version or tombstone
	Skipped  int // writes that changed nothing (same content, older version, absent delete)
}
