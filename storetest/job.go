package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// RunJobs is the conformance suite of dtm.ExportJobs. open returns a new,
// empty job store that is closed when t ends.
func RunJobs(t *testing.T, open func(t *testing.T) dtm.ExportJobs) {
	t.Run("CreateJob", func(t *testing.T) { testCreateJob(t, open) })
	t.Run("UpdateJob", func(t *testing.T) { testUpdateJob(t, open) })
	t.Run("ClaimJob", func(t *testing.T) { testClaimJob(t, open) })
	t.Run("ClaimJobConcurrent", func(t *testing.T) { testClaimJobConcurrent(t, open) })
	t.Run("ActiveJobs", func(t *testing.T) { testActiveJobs(t, open) })
	t.Run("DeleteExpiredJobs", func(t *testing.T) { testDeleteExpiredJobs(t, open) })
}

// jobOpts compares jobs, treating nil and empty lists alike.
var jobOpts = cmp.Options{cmpopts.EquateEmpty()}

// NewJob returns an accepted job with every field set, created at `at`.
func NewJob(id, client string, at time.Time) dtm.ExportJob {
	return dtm.ExportJob{
		ID: id, Client: client, Kind: dtm.ExportGroup, Practices: []string{PracticeA},
		Types: []string{"Patient", "Observation"}, Since: 7, Until: 42,
		TransactionTime: at.Add(-time.Second), Request: "http://h/fhir/Group/" + PracticeA + "/$export?_since=x",
		Lenient: true, Status: dtm.JobAccepted, Progress: "accepted",
		CreatedAt: at, UpdatedAt: at, ExpiresAt: at.Add(24 * time.Hour),
	}
}

func mustCreate(t *testing.T, s dtm.ExportJobs, job dtm.ExportJob) dtm.ExportJob {
	t.Helper()
	got, err := s.CreateJob(context.Background(), job)
	if err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	return got
}

func testCreateJob(t *testing.T, open func(t *testing.T) dtm.ExportJobs) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		job := NewJob("j1", "client-1", Epoch)
		got := mustCreate(t, s, job)
		if d := cmp.Diff(job, got, jobOpts); d != "" {
			t.Fatalf("CreateJob returned (-want +got):\n%s", d)
		}
		read, err := s.Job(ctx, "j1")
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(job, read, jobOpts); d != "" {
			t.Fatalf("Job (-want +got):\n%s", d)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, NewJob("j1", "c", Epoch))
		_, err := s.CreateJob(ctx, NewJob("j1", "c", Epoch))
		wantCode(t, err, dtm.EConflict)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := open(t).Job(ctx, "nope")
		wantCode(t, err, dtm.ENotFound)
	})
}

func testUpdateJob(t *testing.T, open func(t *testing.T) dtm.ExportJobs) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		job := mustCreate(t, s, NewJob("j1", "c", Epoch))
		want := job
		want.Status, want.Progress, want.Error = dtm.JobComplete, "complete", "none"
		want.Files = []dtm.ExportFile{
			{Kind: dtm.FileOutput, Type: "Patient", Practice: PracticeA, Part: 1, FromSeq: 7, ToSeq: 40, Count: 3},
			{Kind: dtm.FileOutput, Type: "Observation", Practice: PracticeA, Part: 2, Joiners: []string{"p1", "p2"}, Count: 9},
		}
		want.UpdatedAt, want.ExpiresAt = Epoch.Add(time.Minute), Epoch.Add(48*time.Hour)
		want.LeaseHolder, want.LeaseUntil = "replica-1", Epoch.Add(30*time.Second)
		update := want
		update.Since, update.Until, update.Client = 1, 2, "other" // immutable: ignored
		if err := s.UpdateJob(ctx, update); err != nil {
			t.Fatal(err)
		}
		got, err := s.Job(ctx, "j1")
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got, jobOpts); d != "" {
			t.Fatalf("Job after UpdateJob (-want +got):\n%s", d)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		wantCode(t, open(t).UpdateJob(ctx, NewJob("nope", "c", Epoch)), dtm.ENotFound)
	})
}

func testClaimJob(t *testing.T, open func(t *testing.T) dtm.ExportJobs) {
	ctx := context.Background()
	claim := func(t *testing.T, s dtm.ExportJobs, holder string, now time.Time) (string, bool) {
		t.Helper()
		job, ok, err := s.ClaimJob(ctx, holder, now, now.Add(30*time.Second))
		if err != nil {
			t.Fatalf("ClaimJob: %v", err)
		}
		if ok && (job.LeaseHolder != holder || !job.LeaseUntil.Equal(now.Add(30*time.Second))) {
			t.Fatalf("claimed job lease = %s until %v", job.LeaseHolder, job.LeaseUntil)
		}
		return job.ID, ok
	}
	t.Run("OK/OldestFirst", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, NewJob("late", "c", Epoch.Add(time.Second)))
		mustCreate(t, s, NewJob("early", "c", Epoch))
		now := Epoch.Add(time.Minute)
		if id, ok := claim(t, s, "r1", now); !ok || id != "early" {
			t.Fatalf("first claim = %q %v, want early", id, ok)
		}
		if id, ok := claim(t, s, "r2", now); !ok || id != "late" {
			t.Fatalf("second claim = %q %v, want late (early is leased)", id, ok)
		}
		if id, ok := claim(t, s, "r3", now); ok {
			t.Fatalf("third claim = %q, want none", id)
		}
		got, _ := s.Job(ctx, "early")
		if got.LeaseHolder != "r1" {
			t.Fatalf("stored lease holder = %q, want r1", got.LeaseHolder)
		}
	})
	t.Run("OK/ExpiredLease", func(t *testing.T) {
		s := open(t)
		job := mustCreate(t, s, NewJob("j1", "c", Epoch))
		job.Status, job.LeaseHolder, job.LeaseUntil = dtm.JobRunning, "dead", Epoch.Add(time.Minute)
		if err := s.UpdateJob(ctx, job); err != nil {
			t.Fatal(err)
		}
		if id, ok := claim(t, s, "r2", Epoch.Add(30*time.Second)); ok {
			t.Fatalf("claimed %q under a live lease", id)
		}
		if id, ok := claim(t, s, "r2", Epoch.Add(2*time.Minute)); !ok || id != "j1" {
			t.Fatalf("claim after lease expiry = %q %v, want j1", id, ok)
		}
	})
	t.Run("OK/FinishedNeverClaimed", func(t *testing.T) {
		s := open(t)
		for _, st := range []string{dtm.JobComplete, dtm.JobFailed, dtm.JobCancelled} {
			job := mustCreate(t, s, NewJob(st, "c", Epoch))
			job.Status = st
			if err := s.UpdateJob(ctx, job); err != nil {
				t.Fatal(err)
			}
		}
		if id, ok := claim(t, s, "r1", Epoch.Add(time.Hour)); ok {
			t.Fatalf("claimed finished job %q", id)
		}
	})
}

func testClaimJobConcurrent(t *testing.T, open func(t *testing.T) dtm.ExportJobs) {
	ctx := context.Background()
	s := open(t)
	const jobs, workers = 20, 8
	for i := range jobs {
		mustCreate(t, s, NewJob(fmt.Sprintf("j%02d", i), "c", Epoch.Add(time.Duration(i)*time.Millisecond)))
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				now := Epoch.Add(time.Minute)
				job, ok, err := s.ClaimJob(ctx, fmt.Sprint("r", w), now, now.Add(time.Hour))
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					return
				}
				mu.Lock()
				claimed[job.ID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != jobs {
		t.Errorf("%d jobs claimed, want %d", len(claimed), jobs)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("job %s claimed %d times", id, n)
		}
	}
}

func testActiveJobs(t *testing.T, open func(t *testing.T) dtm.ExportJobs) {
	ctx := context.Background()
	s := open(t)
	for i, st := range []string{dtm.JobAccepted, dtm.JobRunning, dtm.JobComplete, dtm.JobFailed, dtm.JobCancelled} {
		job := mustCreate(t, s, NewJob(fmt.Sprint("a", i), "alice", Epoch))
		job.Status = st
		if err := s.UpdateJob(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(t, s, NewJob("b1", "bob", Epoch))
	for client, want := range map[string]int{"alice": 2, "bob": 1, "carol": 0} {
		if n, err := s.ActiveJobs(ctx, client); err != nil || n != want {
			t.Errorf("ActiveJobs(%s) = %d, %v; want %d", client, n, err, want)
		}
	}
}

func testDeleteExpiredJobs(t *testing.T, open func(t *testing.T) dtm.ExportJobs) {
	ctx := context.Background()
	s := open(t)
	for i := range 3 {
		job := NewJob(fmt.Sprint("j", i), "c", Epoch)
		job.ExpiresAt = Epoch.Add(time.Duration(i) * time.Hour)
		mustCreate(t, s, job)
	}
	n, err := s.DeleteExpiredJobs(ctx, Epoch.Add(90*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpiredJobs = %d, %v; want 2", n, err)
	}
	for id, code := range map[string]string{"j0": dtm.ENotFound, "j1": dtm.ENotFound, "j2": ""} {
		_, err := s.Job(ctx, id)
		if dtm.ErrorCode(err) != code {
			t.Errorf("Job(%s) err = %v, want code %q", id, err, code)
		}
	}
}
