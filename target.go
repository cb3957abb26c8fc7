package dtm

import (
	"context"
	"time"
)

// Pull states: the life of one target pull (one Bulk Data export consumed).
const (
	PullKickedOff   = "kicked-off"  // the export was started; StatusURL is set
	PullDownloading = "downloading" // the manifest is known; files are being fetched
	PullApplying    = "applying"    // every file is verified; resources are being applied
	PullComplete    = "complete"    // everything applied; the checkpoint advanced
	PullFailed      = "failed"      // gave up; the checkpoint did not move
	PullAbandoned   = "abandoned"   // superseded by a new export with the same _since
)

// SLA limits of the target role (requirements T1 and T2).
const (
	ConsumeWithin  = 6 * time.Hour      // T1: consume data within 6 h of it becoming available
	RetrieveWithin = 7 * 24 * time.Hour // T2: retrieve at least once a week
)

// Checkpoint is where the target stands with one source and practice: the
// transactionTime of the last export it has completely and durably applied,
// which is the _since of the next export (invariant 4).
type Checkpoint struct {
	Source   string // the source's base URL
	Practice string // ODS code
	// TransactionTime is the last applied export's transactionTime; zero
	// when nothing has been applied yet (the next pull is an initial extract).
	TransactionTime time.Time
	Pull            string    // id of the pull that set it
	UpdatedAt       time.Time // when it was set
}

// PullRecord is one target pull: the export it consumed, its progress, and
// the facts the SLA report needs (T1, T2, T3). It never holds patient data.
type PullRecord struct {
	ID       string
	Source   string // the source's base URL
	Practice string // ODS code
	Status   string // one of the Pull* states
	// Since is the _since sent at kick-off (zero for an initial extract).
	Since time.Time
	// StatusURL is the export's status URL (Content-Location), kept so that
	// a restarted pull resumes the same export.
	StatusURL string
	// Manifest is the completed export's manifest as received, kept so that
	// a restarted pull can finish applying without the source.
	Manifest []byte
	// TransactionTime is the manifest's transactionTime: the checkpoint the
	// pull sets when it completes.
	TransactionTime time.Time

	// Source freshness read before kick-off (T3).
	SourceLastUpdated time.Time
	SourceWatermark   time.Time
	SourceFreshness   string // dtm.FreshOK, FreshWarning or FreshBreach; "" if unknown
	SourceLag         time.Duration

	StartedAt   time.Time // the pull began (status check, kick-off)
	AvailableAt time.Time // the export's manifest was first seen complete
	FinishedAt  time.Time // everything applied (Status complete) or given up

	Counts PullCounts
	Error  string // why the pull failed, caller-safe; "" otherwise
}

// PullCounts are the reconciliation counts of one pull (invariant 5): every
// resource received is Applied, Skipped or Quarantined.
type PullCounts struct {
	Received     int64 // resources and delete entries read from output and deleted files
	Applied      int64 // writes that produced a new version or tombstone
	Skipped      int64 // writes that changed nothing (already present, older version)
	Deleted      int64 // delete entries received (included in Received)
	Quarantined  int64 // resources kept aside with a reason (not applied)
	Warnings     int64 // validation warnings on applied resources
	SourceErrors int64 // OperationOutcomes in the export's error files
	Attachments  int64 // document attachments fetched and verified
	// AttachmentProblems are attachments missing or failing verification.
	AttachmentProblems int64
	Files              int64 // files downloaded and verified
	Bytes              int64 // bytes downloaded (after decompression)
}

// ConsumeLatency is how long the export waited between becoming available
// and being fully applied (T1); zero until the pull completes.
func (p PullRecord) ConsumeLatency() time.Duration {
	if p.Status != PullComplete || p.AvailableAt.IsZero() {
		return 0
	}
	return max(p.FinishedAt.Sub(p.AvailableAt), 0)
}

// PullFile is one manifest file of a pull and how far the target got with
// it. A file is downloaded to Path, verified (line count equal to the
// manifest's count, SHA-256 recorded), then applied; a restarted pull skips
// the steps already recorded.
type PullFile struct {
	Pull  string
	URL   string
	Kind  string // FileOutput, FileDeleted or FileError
	Type  string
	Count int64 // the manifest's count; -1 when it gave none

	Path     string // verified local copy ("" until Verified)
	SHA256   string // hex digest of the decompressed content
	Bytes    int64
	Lines    int64
	Verified bool
	Applied  bool
	// Counts are what applying this file did (Received, Applied, Skipped,
	// Deleted, Quarantined, Warnings, SourceErrors), saved with Applied so
	// that a pull's totals are right however often it was restarted.
	Counts PullCounts
}

// Quarantine reasons.
const (
	QuarantineInvalid     = "invalid"      // failed validation (an error or fatal finding)
	QuarantineUnreadable  = "unreadable"   // not a resource: bad JSON, no type or id
	QuarantineSourceError = "source-error" // an OperationOutcome from the export's error files
	QuarantineAttachment  = "attachment"   // an attachment missing, unreadable or failing size/hash
	QuarantineRejected    = "rejected"     // the target store refused the write
)

// QuarantineRecord keeps a resource the target received but did not apply,
// or a problem it found, with the reason: nothing is silently dropped
// (invariant 5). JSON and Outcome may hold patient data: they stay in the
// target store, never in logs.
type QuarantineRecord struct {
	Pull     string
	Practice string
	Reason   string // one of the Quarantine* reasons
	// Type and ID name the resource ("" when it could not be read; then
	// Where locates it).
	Type    string
	ID      string
	Version int64
	Where   string // file URL and line, for resources with no type or id
	JSON    []byte // the resource or line as received (nil for attachment problems)
	Outcome []byte // FHIR OperationOutcome JSON explaining the reason
	At      time.Time
}

// TargetState is the durable bookkeeping of the target role: checkpoints,
// pulls with their files, and quarantine. It lives in the target store's
// database so that the checkpoint and the applied data share one
// durability domain. Implementations are safe for concurrent use.
type TargetState interface {
	// Checkpoint returns the checkpoint of (source, practice); a zero
	// TransactionTime and a nil error when there is none yet.
	Checkpoint(ctx context.Context, source, practice string) (Checkpoint, error)

	// SavePull creates or replaces a pull record (keyed by ID).
	SavePull(ctx context.Context, p PullRecord) error
	// CompletePull marks p complete and, in the same transaction, advances
	// the checkpoint of (p.Source, p.Practice) to p.TransactionTime. The
	// checkpoint never moves backwards. Call it only once every file of the
	// export is durably applied (invariant 4).
	CompletePull(ctx context.Context, p PullRecord) error
	// Pull returns a pull by id, or an ENotFound error.
	Pull(ctx context.Context, id string) (PullRecord, error)
	// ActivePull returns the latest pull of (source, practice) that is
	// neither complete, failed nor abandoned; ok is false when there is none.
	ActivePull(ctx context.Context, source, practice string) (p PullRecord, ok bool, err error)
	// Pulls returns up to limit pulls of the practice (every source),
	// newest first.
	Pulls(ctx context.Context, practice string, limit int) ([]PullRecord, error)

	// SaveFile creates or replaces a file record (keyed by Pull and URL).
	SaveFile(ctx context.Context, f PullFile) error
	// Files returns the file records of a pull in the order they were
	// first saved.
	Files(ctx context.Context, pull string) ([]PullFile, error)

	// Quarantine stores records; storing one again for the same (Pull,
	// Reason, Type, ID, Where) replaces it, so that re-running a pull never
	// duplicates them.
	Quarantine(ctx context.Context, recs []QuarantineRecord) error
	// Quarantined calls fn with the quarantine records of the practice
	// (of one pull when pull is not ""), in the order they were stored.
	Quarantined(ctx context.Context, practice, pull string, fn func(QuarantineRecord) error) error
}
