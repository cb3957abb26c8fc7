package bulk

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/dtm-project/dtm"
)

// Worker timing.
const (
	pollInterval     = 500 * time.Millisecond // idle workers look for jobs this often
	progressInterval = time.Second            // progress and lease renewal at most this often
	sweepInterval    = time.Minute            // expired jobs are deleted this often
)

// errAbandoned stops planning a job that was cancelled or taken over by
// another replica.
var errAbandoned = errors.New("job abandoned")

// Run plans export jobs with Config.Workers goroutines, claiming each with
// a lease so that any replica sharing the job store can plan it, and deletes
// expired jobs. It returns nil when ctx is done, after every worker has
// stopped; a job interrupted by shutdown is released for another worker.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() { s.work(ctx) })
	}
	wg.Go(func() { s.sweep(ctx) })
	wg.Wait()
	return nil
}

// work claims and plans jobs until ctx is done.
func (s *Server) work(ctx context.Context) {
	for ctx.Err() == nil {
		now := s.cfg.Clock.Now()
		job, ok, err := s.cfg.Jobs.ClaimJob(ctx, s.cfg.ReplicaID, now, now.Add(leaseDuration))
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.ErrorContext(ctx, "claim export job", "err", err)
		}
		if ok {
			s.runJob(ctx, job)
			continue
		}
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-time.After(pollInterval):
		}
	}
}

// runJob plans one claimed job and records the outcome.
func (s *Server) runJob(ctx context.Context, job dtm.ExportJob) {
	log := s.cfg.Logger.With("job", job.ID)
	start := time.Now()
	job.Status, job.Progress = dtm.JobRunning, "planning"
	if err := s.saveProgress(ctx, &job, "planning"); err != nil {
		s.abandon(ctx, &job, err)
		return
	}
	p := &planner{j: s.selectorJournal(), job: &job, max: int64(s.cfg.MaxFileResources),
		parallel: runtime.GOMAXPROCS(0), progress: s.progressFunc(&job)}
	files, err := p.plan(ctx)
	if err == nil {
		err = s.finish(ctx, &job, files)
	}
	if err != nil {
		s.abandon(ctx, &job, err)
		return
	}
	log.InfoContext(ctx, "export planned", "files", len(files), "elapsed", time.Since(start))
}

// progressFunc returns the planner's progress callback, safe for
// concurrent use: at most once per progressInterval it records the message
// and renews the lease.
func (s *Server) progressFunc(job *dtm.ExportJob) func(context.Context, string) error {
	var mu sync.Mutex
	var last time.Time
	return func(ctx context.Context, msg string) error {
		mu.Lock()
		defer mu.Unlock()
		if now := s.cfg.Clock.Now(); now.Sub(last) >= progressInterval {
			last = now
			return s.saveProgress(ctx, job, msg)
		}
		return nil
	}
}

// saveProgress re-reads the job, stops with errAbandoned if it was
// cancelled or leased to another replica, and otherwise records progress
// and renews the lease.
func (s *Server) saveProgress(ctx context.Context, job *dtm.ExportJob, msg string) error {
	cur, err := s.cfg.Jobs.Job(ctx, job.ID)
	if err != nil {
		return fmt.Errorf("reload job: %w", err)
	}
	if cur.Status == dtm.JobCancelled || cur.LeaseHolder != s.cfg.ReplicaID {
		return errAbandoned
	}
	now := s.cfg.Clock.Now()
	job.Progress, job.UpdatedAt, job.LeaseUntil = msg, now, now.Add(leaseDuration)
	if err := s.cfg.Jobs.UpdateJob(ctx, *job); err != nil {
		return fmt.Errorf("save progress: %w", err)
	}
	return nil
}

// finish records the planned files and completes the job, unless it was
// cancelled meanwhile. The files stay available for JobTTL from now.
func (s *Server) finish(ctx context.Context, job *dtm.ExportJob, files []dtm.ExportFile) error {
	cur, err := s.cfg.Jobs.Job(ctx, job.ID)
	if err != nil {
		return fmt.Errorf("reload job: %w", err)
	}
	if cur.Status == dtm.JobCancelled || cur.LeaseHolder != s.cfg.ReplicaID {
		return errAbandoned
	}
	now := s.cfg.Clock.Now()
	job.Status, job.Progress, job.Files = dtm.JobComplete, "complete", files
	job.UpdatedAt, job.ExpiresAt = now, now.Add(s.cfg.JobTTL)
	job.LeaseHolder, job.LeaseUntil = "", time.Time{}
	if err := s.cfg.Jobs.UpdateJob(ctx, *job); err != nil {
		return fmt.Errorf("complete job: %w", err)
	}
	return nil
}

// abandon handles a planning error: a cancelled or taken-over job is left
// alone, a job interrupted by shutdown is released (its lease ended now),
// and any other failure marks the job failed with a caller-safe reason.
func (s *Server) abandon(ctx context.Context, job *dtm.ExportJob, err error) {
	if errors.Is(err, errAbandoned) {
		return
	}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	now := s.cfg.Clock.Now()
	job.UpdatedAt, job.LeaseHolder, job.LeaseUntil = now, "", now
	if ctx.Err() != nil {
		job.Status, job.Progress = dtm.JobAccepted, "waiting for a worker"
	} else {
		s.cfg.Logger.ErrorContext(ctx, "export planning failed", "job", job.ID, "err", err)
		job.Status, job.Progress = dtm.JobFailed, "failed"
		job.Error = "export failed: " + dtm.ErrorMessage(err)
	}
	if uerr := s.cfg.Jobs.UpdateJob(bg, *job); uerr != nil {
		s.cfg.Logger.ErrorContext(bg, "record export failure", "job", job.ID, "err", uerr)
	}
}

// sweep deletes expired jobs every sweepInterval until ctx is done.
func (s *Server) sweep(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.cfg.Jobs.DeleteExpiredJobs(ctx, s.cfg.Clock.Now())
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.ErrorContext(ctx, "delete expired export jobs", "err", err)
		} else if n > 0 {
			s.cfg.Logger.InfoContext(ctx, "expired export jobs deleted", "count", n)
		}
	}
}
