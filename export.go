package dtm

import (
	"context"
	"time"
)

// Export kinds: the three Bulk Data kick-off endpoints.
const (
	ExportGroup   = "group"   // [base]/Group/{ods}/$export: the practice's registered patients
	ExportPatient = "patient" // [base]/Patient/$export: every patient of the caller's practices
	ExportSystem  = "system"  // [base]/$export: everything in the caller's practices
)

// Export job states.
const (
	JobAccepted  = "accepted"
	JobRunning   = "in-progress"
	JobComplete  = "complete"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// ExportJob is one Bulk Data export: what was asked, the snapshot it is
// pinned to, and, once planned, the files that make it up. Because the files
// are defined by sequence ranges over the journal, any replica can serve
// them and a retried download returns the same bytes.
type ExportJob struct {
	ID        string
	Client    string // client id that started it ("" when auth is off)
	Kind      string // ExportGroup, ExportPatient or ExportSystem
	Practices []string
	Types     []string // requested _type values; empty means all
	Since     int64    // journal seq the export starts after (from _since)
	Until     int64    // snapshot seq the export is pinned to
	// TransactionTime is the commit time of Until: the _since value for the
	// next export, so that consecutive exports meet exactly (invariant 1).
	TransactionTime time.Time
	Request         string // the kick-off URL as received, for the manifest
	Lenient         bool   // Prefer: handling=lenient was sent
	Status          string
	Progress        string       // human-readable progress for X-Progress
	Files           []ExportFile // set when Status is JobComplete
	Error           string       // caller-safe reason when Status is JobFailed
	CreatedAt       time.Time
	UpdatedAt       time.Time
	ExpiresAt       time.Time
	LeaseHolder     string    // replica currently planning the job
	LeaseUntil      time.Time // the lease expires at this time
}

// File kinds in a manifest.
const (
	FileOutput  = "output"
	FileDeleted = "deleted"
	FileError   = "error"
)

// ExportFile is one NDJSON file of an export. Its content is a pure
// function of the job and these fields.
type ExportFile struct {
	Kind     string // FileOutput, FileDeleted or FileError
	Type     string // resource type; "Bundle" for deleted, "OperationOutcome" for error
	Practice string
	Part     int   // 1-based part number within (Practice, Kind, Type)
	FromSeq  int64 // changes with seq in (FromSeq, ToSeq] ...
	ToSeq    int64
	// Joiners lists the patients who joined the practice in the export's
	// range whose whole record this part carries (invariant 3); when set,
	// FromSeq/ToSeq are not used.
	Joiners []string
	Count   int64 // resources (or Bundles) in the file
}

// ExportJobs stores export jobs so that every replica sees the same jobs.
// Implementations are safe for concurrent use.
type ExportJobs interface {
	// CreateJob stores a new job and returns it.
	CreateJob(ctx context.Context, job ExportJob) (ExportJob, error)
	// Job returns a job by id, or an ENotFound error.
	Job(ctx context.Context, id string) (ExportJob, error)
	// UpdateJob replaces a job's mutable fields (Status, Progress, Files,
	// Error, UpdatedAt, ExpiresAt, LeaseHolder, LeaseUntil). It returns an
	// ENotFound error for an unknown job.
	UpdateJob(ctx context.Context, job ExportJob) error
	// ClaimJob leases the oldest job that is accepted, or in progress with
	// an expired lease, to holder until leaseUntil. ok is false when there
	// is none.
	ClaimJob(ctx context.Context, holder string, now, leaseUntil time.Time) (job ExportJob, ok bool, err error)
	// ActiveJobs returns how many jobs of the client are accepted or in
	// progress.
	ActiveJobs(ctx context.Context, client string) (int, error)
	// DeleteExpiredJobs removes jobs whose ExpiresAt is before now and
	// returns how many.
	DeleteExpiredJobs(ctx context.Context, now time.Time) (int, error)
}
