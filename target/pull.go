package target

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/ukcore"
)

// Validator checks one resource; *ukcore.Validator is one. It must be safe
// for concurrent use.
type Validator interface {
	Validate(resource []byte) ukcore.Result
}

// Progress receives progress events so that a terminal can draw bars. Its
// methods are called from several goroutines and must be safe for that.
type Progress interface {
	// Start begins a phase ("download", "apply", "attachments") with the
	// expected total (files for download, resources for apply and
	// attachments; -1 when unknown).
	Start(phase string, total int64)
	// Add records n more units of phase done, for resource type typ.
	Add(phase, typ string, n int64)
	// Done ends a phase.
	Done(phase string)
}

// TypeProgress is implemented by a Progress that draws a bar per resource
// type: the puller then calls StartTypes right after Start, with the
// phase's expected total per type.
type TypeProgress interface {
	StartTypes(phase string, totals map[string]int64)
}

// startTypes starts a phase, with per-type totals for a TypeProgress.
func (p *Puller) startTypes(phase string, total int64, totals map[string]int64) {
	p.cfg.Progress.Start(phase, total)
	if tp, ok := p.cfg.Progress.(TypeProgress); ok {
		tp.StartTypes(phase, totals)
	}
}

// Config configures a Puller. Store, State and Client are required.
type Config struct {
	// Store is the target store the resources are loaded into.
	Store dtm.Store
	// State keeps checkpoints, pulls, files and quarantine; usually the
	// same database as Store.
	State dtm.TargetState
	// Client talks to the source.
	Client *Client
	// Validator checks every resource before it is applied; nil applies
	// everything unchecked.
	Validator Validator
	// NewValidator, when set, is used instead of Validator: it is called
	// once per pull with a resolve function that reports whether a
	// relative reference "Type/id" exists in the pull's delta or in the
	// target store (for ukcore.Options.Resolve), so that unresolvable
	// references quarantine the resource (T4).
	NewValidator func(resolve func(ref string) bool) (Validator, error)
	// WorkDir holds downloaded files until their pull completes;
	// os.TempDir()/dtm-target when "".
	WorkDir string
	// Clock stamps pull records; dtm.SystemClock{} when nil.
	Clock dtm.Clock
	// Logger gets operational messages, never patient data; slog.Default()
	// when nil.
	Logger *slog.Logger
	// Parallel bounds concurrent downloads and validation workers (4 when 0).
	Parallel int
	// BatchSize is the number of writes per store transaction (1000 when 0).
	BatchSize int
	// Types restricts the export to these resource types (_type); all when
	// empty.
	Types []string
	// Progress, when set, receives progress events.
	Progress Progress
	// MaxAttachmentBytes bounds one attachment fetched from the source
	// (64 MiB when 0).
	MaxAttachmentBytes int64
	// Sinks receive every applied export, in order, before the checkpoint
	// advances (see Sink). The target store is loaded whether or not there
	// are sinks: it keeps the pulls, quarantine and checkpoints, and
	// validation resolves references against it.
	Sinks []Sink
}

// Puller pulls practices from one source into the target store. It is safe
// for concurrent use by pulls of different practices. Pulls of the same
// practice exclude each other through a lock file in the work directory
// (on Unix): a second one, in this process or another sharing the work
// directory, fails with an EConflict error.
type Puller struct {
	cfg Config
	log *slog.Logger
}

// NewPuller returns a Puller for cfg, filling in defaults. It returns an
// EInvalid error when a required field is missing.
func NewPuller(cfg Config) (*Puller, error) {
	if cfg.Store == nil || cfg.State == nil || cfg.Client == nil {
		return nil, dtm.Errorf(dtm.EInvalid, "puller: store, state and client are required")
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = filepath.Join(os.TempDir(), "dtm-target")
	}
	if cfg.Clock == nil {
		cfg.Clock = dtm.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Parallel = cmp(cfg.Parallel, 4)
	cfg.BatchSize = cmp(cfg.BatchSize, 1000)
	cfg.MaxAttachmentBytes = cmp(cfg.MaxAttachmentBytes, 64<<20)
	if cfg.Progress == nil {
		cfg.Progress = noProgress{}
	}
	return &Puller{cfg: cfg, log: cfg.Logger}, nil
}

// cmp returns v, or def when v is zero or negative. (Package files other
// than the puller's use it too.)
func cmp[T int | int64](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

type noProgress struct{}

func (noProgress) Start(string, int64)       {}
func (noProgress) Add(string, string, int64) {}
func (noProgress) Done(string)               {}

// PullResult is the outcome of Puller.Pull.
type PullResult struct {
	dtm.PullRecord
	// Resumed is true when the pull continued one a previous run left
	// unfinished.
	Resumed bool
	// Restarted is true when the export had expired at the source and was
	// started again with the same _since.
	Restarted bool
	// SinceLastSuccess is the time since the previous successful pull
	// finished (T2), 0 when there was none.
	SinceLastSuccess time.Duration
}

// Pull brings the target store up to date with the practice at the
// source: it checks the source's freshness, starts (or resumes) an export
// since the last checkpoint, downloads and verifies every file, validates
// and applies every resource (quarantining the invalid), verifies the
// practice's attachments, delivers the export to every sink, and only
// then advances the checkpoint (invariant 4). Killed at any moment and
// run again, it resumes the same export and reaches the same final state.
//
// On error the pull is left resumable (or marked failed when retrying
// cannot help) and the checkpoint has not moved.
func (p *Puller) Pull(ctx context.Context, practice string) (PullResult, error) {
	if !dtm.ValidODS(practice) {
		return PullResult{}, dtm.Errorf(dtm.EInvalid, "pull: invalid ODS code")
	}
	unlock, err := p.lockPractice(practice)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", practice, err)
	}
	defer unlock()
	res, err := p.begin(ctx, practice)
	if err != nil {
		return res, fmt.Errorf("pull %s: %w", practice, err)
	}
	err = p.run(ctx, &res)
	if errors.Is(err, errExpired) && !res.Restarted {
		p.log.Warn("export expired at the source; starting it again with the same _since", "pull", res.ID)
		if err = p.abandon(ctx, &res.PullRecord); err == nil {
			res.PullRecord = p.newRecord(practice, res.Since)
			res.Restarted = true
			err = p.run(ctx, &res)
		}
	}
	if err != nil {
		return res, p.fail(ctx, &res.PullRecord, err)
	}
	return res, nil
}

// errExpired reports that the export cannot be continued: the source no
// longer has it (404/410 on its status or files) or it failed there (500 on
// its status, per the Bulk Data IG).
var errExpired = errors.New("export expired or failed at the source")

// begin resumes the unfinished pull of the practice, or starts a new
// record with _since from the checkpoint.
func (p *Puller) begin(ctx context.Context, practice string) (PullResult, error) {
	src := p.cfg.Client.Source()
	var res PullResult
	if last, err := p.lastSuccess(ctx, practice); err != nil {
		return res, err
	} else if !last.IsZero() {
		res.SinceLastSuccess = p.cfg.Clock.Now().Sub(last)
	}
	active, ok, err := p.cfg.State.ActivePull(ctx, src, practice)
	if err != nil {
		return res, fmt.Errorf("active pull: %w", err)
	}
	if ok {
		p.log.Info("resuming pull", "pull", active.ID, "status", active.Status)
		res.PullRecord, res.Resumed = active, true
		return res, nil
	}
	cp, err := p.cfg.State.Checkpoint(ctx, src, practice)
	if err != nil {
		return res, fmt.Errorf("checkpoint: %w", err)
	}
	res.PullRecord = p.newRecord(practice, cp.TransactionTime)
	return res, nil
}

func (p *Puller) newRecord(practice string, since time.Time) dtm.PullRecord {
	return dtm.PullRecord{
		ID: newID(), Source: p.cfg.Client.Source(), Practice: practice,
		Since: since, StartedAt: p.cfg.Clock.Now(),
	}
}

// newID returns a random pull id.
func newID() string { return rand.Text()[:16] }

// run takes the pull from wherever it stands to complete.
func (p *Puller) run(ctx context.Context, res *PullResult) error {
	rec := &res.PullRecord
	if rec.StatusURL == "" {
		if err := p.kickOff(ctx, rec); err != nil {
			return err
		}
	}
	if rec.Manifest == nil {
		if err := p.awaitManifest(ctx, rec); err != nil {
			return err
		}
	}
	m, err := ParseManifest(rec.Manifest, rec.StatusURL)
	if err != nil {
		return err
	}
	if err := p.download(ctx, rec, m); err != nil {
		return err
	}
	if err := p.apply(ctx, rec); err != nil {
		return err
	}
	if err := p.attachments(ctx, rec); err != nil {
		return err
	}
	if err := p.deliver(ctx, rec); err != nil {
		return err
	}
	return p.complete(ctx, rec)
}

// kickOff checks the source's freshness, starts the export and saves the
// status URL before anything else, so that a restart resumes this export.
func (p *Puller) kickOff(ctx context.Context, rec *dtm.PullRecord) error {
	st, err := p.cfg.Client.Status(ctx, rec.Practice)
	switch {
	case err == nil:
		rec.SourceLastUpdated, rec.SourceWatermark = st.LastUpdated, st.SourceWatermark
		rec.SourceFreshness, rec.SourceLag = st.Freshness, st.Lag
		if st.Freshness != "" && st.Freshness != dtm.FreshOK {
			p.log.Warn("source data is not fresh", "practice", rec.Practice, "freshness", st.Freshness, "lag", st.Lag)
		}
	case dtm.ErrorCode(err) == dtm.ENotFound:
		p.log.Warn("source has no dtm status endpoint; freshness unknown", "practice", rec.Practice)
	default:
		return err
	}
	u, err := p.cfg.Client.KickOff(ctx, rec.Practice, KickOffOptions{Since: rec.Since, Types: p.cfg.Types})
	if err != nil {
		return err
	}
	rec.StatusURL, rec.Status = u, dtm.PullKickedOff
	return p.save(ctx, rec)
}

// awaitManifest polls until the export is complete and saves the manifest
// and the file list.
func (p *Puller) awaitManifest(ctx context.Context, rec *dtm.PullRecord) error {
	m, raw, err := p.cfg.Client.Poll(ctx, rec.StatusURL, nil)
	var se *StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusInternalServerError {
		return fmt.Errorf("%w: %w", errExpired, err)
	} else if err != nil {
		return expired(err)
	}
	rec.Manifest, rec.TransactionTime = raw, m.TransactionTime
	rec.AvailableAt, rec.Status = p.cfg.Clock.Now(), dtm.PullDownloading
	p.log.Info("export ready", "pull", rec.ID, "transaction_time", m.TransactionTime,
		"output", len(m.Output), "deleted", len(m.Deleted), "error", len(m.Error))
	// The file records first: a pull record with a manifest promises them
	// (download also adds any a crash left out).
	if err := p.saveFiles(ctx, rec.ID, m); err != nil {
		return err
	}
	return p.save(ctx, rec)
}

// saveFiles records every file of the manifest that the pull has no
// record of yet, in manifest order, and leaves the others as they are.
func (p *Puller) saveFiles(ctx context.Context, pull string, m *Manifest) error {
	have, err := p.cfg.State.Files(ctx, pull)
	if err != nil {
		return fmt.Errorf("list files: %w", err)
	}
	known := make(map[string]bool, len(have))
	for _, f := range have {
		known[f.URL] = true
	}
	for _, f := range manifestFiles(pull, m) {
		if known[f.URL] {
			continue
		}
		if err := p.cfg.State.SaveFile(ctx, f); err != nil {
			return fmt.Errorf("save file record: %w", err)
		}
	}
	return nil
}

// manifestFiles lists a manifest's files as records: output, then
// deleted, then error.
func manifestFiles(pull string, m *Manifest) []dtm.PullFile {
	var fs []dtm.PullFile
	for _, l := range []struct {
		kind  string
		files []ManifestFile
	}{{dtm.FileOutput, m.Output}, {dtm.FileDeleted, m.Deleted}, {dtm.FileError, m.Error}} {
		for _, f := range l.files {
			fs = append(fs, dtm.PullFile{Pull: pull, URL: f.URL, Kind: l.kind, Type: f.Type, Count: f.Count})
		}
	}
	return fs
}

// expired maps a 404 or 410 from the source to errExpired.
func expired(err error) error {
	if c := dtm.ErrorCode(err); c == dtm.ENotFound || c == dtm.EGone {
		return fmt.Errorf("%w: %w", errExpired, err)
	}
	return err
}

// save stores the pull record.
func (p *Puller) save(ctx context.Context, rec *dtm.PullRecord) error {
	if err := p.cfg.State.SavePull(ctx, *rec); err != nil {
		return fmt.Errorf("save pull: %w", err)
	}
	return nil
}

// abandon marks a pull superseded and removes its work files.
func (p *Puller) abandon(ctx context.Context, rec *dtm.PullRecord) error {
	rec.Status, rec.FinishedAt = dtm.PullAbandoned, p.cfg.Clock.Now()
	if err := p.save(ctx, rec); err != nil {
		return err
	}
	return os.RemoveAll(p.workDir(rec.ID))
}

// fail records err on the pull. Errors retrying cannot fix (a refused
// request, invalid data) mark it failed; others (network, cancellation)
// leave it resumable. It returns err, wrapped.
func (p *Puller) fail(ctx context.Context, rec *dtm.PullRecord, err error) error {
	err = fmt.Errorf("pull %s: %w", rec.Practice, err)
	if rec.ID == "" || rec.StatusURL == "" || ctx.Err() != nil {
		return err
	}
	switch dtm.ErrorCode(err) {
	case dtm.EInvalid, dtm.EForbidden, dtm.EUnauthorized, dtm.ENotSupported, dtm.EConflict:
		rec.Status, rec.FinishedAt, rec.Error = dtm.PullFailed, p.cfg.Clock.Now(), dtm.ErrorMessage(err)
		if serr := p.save(context.WithoutCancel(ctx), rec); serr != nil {
			p.log.Error("recording failed pull", "pull", rec.ID, "err", serr)
		}
		os.RemoveAll(p.workDir(rec.ID))
	}
	return err
}

// workDir is where a pull's files are downloaded.
func (p *Puller) workDir(pull string) string { return filepath.Join(p.cfg.WorkDir, pull) }

// lastSuccess returns when the latest complete pull of the practice
// finished, or the zero time.
func (p *Puller) lastSuccess(ctx context.Context, practice string) (time.Time, error) {
	pulls, err := p.cfg.State.Pulls(ctx, practice, 50)
	if err != nil {
		return time.Time{}, fmt.Errorf("list pulls: %w", err)
	}
	for _, pr := range pulls {
		if pr.Status == dtm.PullComplete && pr.Source == p.cfg.Client.Source() {
			return pr.FinishedAt, nil
		}
	}
	return time.Time{}, nil
}
