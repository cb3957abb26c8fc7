package crash_test

import (
	"context"
	"fmt"
	"os"
	"path"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/target"
)

// TestDTM runs the tests that need the dtm binary, built once for all.
func TestDTM(t *testing.T) {
	t.Parallel()
	bin := buildDTM(t)
	t.Run("LoadKilled", func(t *testing.T) {
		for _, kind := range storeKinds {
			t.Run(kind.name, func(t *testing.T) { testLoadKilled(t, bin, kind.dsn) })
		}
	})
	t.Run("LoadDiskFull", func(t *testing.T) {
		t.Run("sqlite", func(t *testing.T) { testLoadDiskFull(t, bin) })
		t.Run("postgres", func(t *testing.T) { testLoadDiskFullPostgres(t, bin) })
	})
	t.Run("LoadReadOnly", func(t *testing.T) { testLoadReadOnly(t, bin) })
	t.Run("JobAfterRestart", func(t *testing.T) {
		for _, kind := range storeKinds {
			t.Run(kind.name, func(t *testing.T) { testJobAfterRestart(t, bin, kind.dsn(t)) })
		}
	})
	t.Run("ServeKilled", func(t *testing.T) {
		for _, kind := range storeKinds {
			t.Run(kind.name, func(t *testing.T) { testServeKilled(t, bin, kind.dsn(t)) })
		}
	})
}

// testServeKilled kills "dtm source serve" with SIGKILL at random moments
// while a target pulls from it, restarts it on the same address, and lets
// the target carry on (its retries bridge short outages; a pull that gives
// up is run again and resumes the same export). Between pulls the source
// changes (updates and deletes). After each round the target must match the
// source exactly: same resources and versions, a matching reconcile, no
// version applied twice.
func testServeKilled(t *testing.T, bin, dsn string) {
	ctx := context.Background()
	in := practice(t, patients)
	src := mustOpen(t, dsn)
	loadSource(t, src, in)
	proc := newSourceProc(t, bin, dsn)
	proc.start()
	defer proc.kill()
	r := newRand(t)

	// A clean full pull gives the span to pick kill moments in.
	start := time.Now()
	if _, err := newTarget(t, proc.url()).puller.Pull(ctx, odsCode); err != nil {
		t.Fatal(err)
	}
	whole := time.Since(start)

	rounds := trials(3, 40)
	var ts *targetSide
	var delta time.Duration // how long the last uninterrupted delta pull took
	var killsDuring, killsIdle, failed, pulls, leases int
	for i := range rounds {
		if i%2 == 0 { // a new target: a full export; otherwise a delta
			if ts != nil {
				assertMigrated(t, src, ts)
			}
			ts = newTarget(t, proc.url())
		} else {
			changeSource(t, src, r, in, 200, fmt.Sprint(i))
		}
		span := whole // a full export; a delta takes about as long as the last one
		if i%2 == 1 && delta > 0 {
			span = delta
		}
		roundStart := time.Now()
		done := make(chan error, 1)
		go func() {
			_, err := ts.puller.Pull(ctx, odsCode)
			done <- err
		}()
		var err error
		select {
		case err = <-done:
			if i%2 == 1 && err == nil {
				delta = time.Since(roundStart)
			}
			killsIdle++
			proc.kill()
		case <-time.After(time.Duration(1 + r.Int64N(int64(span)))):
			killsDuring++
			proc.kill()
			time.Sleep(time.Duration(r.Int64N(int64(200 * time.Millisecond)))) // the source is down a while
			if os.Getenv(envLong) == "" || i%2 == 0 {
				leases += expireLeases(t, src, ts)
			}
			proc.start()
			err = <-done
		}
		if proc.c.ended {
			proc.start()
		}
		pulls++
		for attempt := 0; err != nil; attempt++ {
			if attempt == 5 {
				t.Fatalf("round %d: pull still failing after a source restart: %v", i, err)
			}
			t.Logf("round %d: pull failed (%v); running it again", i, err)
			failed++
			pulls++
			_, err = ts.puller.Pull(ctx, odsCode)
		}
		assertMigrated(t, src, ts)
	}
	t.Logf("%d rounds: source killed (SIGKILL) %d times during a pull and %d times between pulls, %d restarts; "+
		"%d pulls, %d of them failed and were run again; %d export jobs left leased by a killed source (lease fast-forwarded); "+
		"target matched the source after every round; data lost: 0",
		rounds, killsDuring, killsIdle, proc.starts-1, pulls, failed, leases)
}

// expireLeases ends, as if its 30 s had passed, the lease a killed source
// held on the export job the target is waiting for, so that the restarted
// source plans it at once: the fast mode's stand-in for waiting. It
// returns 1 if there was such a lease.
func expireLeases(tb testing.TB, src dtm.Store, ts *targetSide) int {
	tb.Helper()
	ctx := context.Background()
	p, ok, err := ts.db.ActivePull(ctx, ts.client.Source(), odsCode)
	if err != nil {
		tb.Fatal(err)
	}
	if !ok || p.StatusURL == "" {
		return 0
	}
	jobs := src.(dtm.ExportJobs)
	job, err := jobs.Job(ctx, path.Base(p.StatusURL))
	if dtm.ErrorCode(err) == dtm.ENotFound {
		return 0
	} else if err != nil {
		tb.Fatal(err)
	}
	if job.Status != dtm.JobAccepted && job.Status != dtm.JobRunning || job.LeaseHolder == "" {
		return 0
	}
	job.LeaseUntil = time.Now().Add(-time.Millisecond)
	if err := jobs.UpdateJob(ctx, job); err != nil {
		tb.Fatal(err)
	}
	return 1
}

// testJobAfterRestart checks the two outcomes of an export job when its
// source is restarted. Survives: a job a killed source was still planning
// (running, leased to it) is planned by the restarted source once the
// lease ends, and the target gets a complete export. Fails cleanly: a job
// the restarted source reports failed makes a resumed pull start the
// export again with the same _since, and the target still ends exact.
func testJobAfterRestart(t *testing.T, bin, dsn string) {
	ctx := context.Background()
	in := practice(t, patients)
	src := mustOpen(t, dsn)
	loadSource(t, src, in)
	jobs := src.(dtm.ExportJobs)
	proc := newSourceProc(t, bin, dsn)
	proc.start()
	defer proc.kill()

	t.Run("Survives", func(t *testing.T) {
		ts := newTarget(t, proc.url())
		statusURL, err := ts.client.KickOff(ctx, odsCode, target.KickOffOptions{})
		if err != nil {
			t.Fatal(err)
		}
		proc.kill()
		job, err := jobs.Job(ctx, path.Base(statusURL))
		if err != nil {
			t.Fatal(err)
		}
		// As the killed source left it part-way through planning, with a
		// lease that has not ended yet.
		job.Status, job.Progress, job.Files, job.ExpiresAt = dtm.JobRunning, "planning", nil, time.Time{}
		job.LeaseHolder, job.LeaseUntil = "killed-replica", time.Now().Add(time.Second)
		if err := jobs.UpdateJob(ctx, job); err != nil {
			t.Fatal(err)
		}
		proc.start()
		m, _, err := ts.client.Poll(ctx, statusURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		done, err := jobs.Job(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done.Status != dtm.JobComplete || done.LeaseHolder != "" || !m.TransactionTime.Equal(job.TransactionTime) {
			t.Fatalf("job after restart: %s, lease %q, transactionTime %v (was %v)", done.Status, done.LeaseHolder,
				m.TransactionTime, job.TransactionTime)
		}
		var n int64
		for _, f := range done.Files {
			if f.Kind == dtm.FileOutput {
				n += f.Count
			}
		}
		counts, err := src.Counts(ctx, odsCode, job.Until)
		if err != nil {
			t.Fatal(err)
		}
		var want int64
		for _, c := range counts {
			want += c
		}
		if n != want {
			t.Fatalf("the restarted source planned %d resources, the practice has %d", n, want)
		}
	})

	t.Run("FailsCleanly", func(t *testing.T) {
		// Interrupt a pull between its kick-off and its manifest; on a busy
		// machine the manifest may come first, so try a few fresh targets.
		var ts *targetSide
		var rec dtm.PullRecord
		for attempt := 1; ; attempt++ {
			if attempt > 5 {
				t.Skip("every pull received its manifest before it could be interrupted")
			}
			ts = newTarget(t, proc.url())
			pctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				_, err := ts.puller.Pull(pctx, odsCode)
				done <- err
			}()
			for ok := false; !ok || rec.StatusURL == ""; {
				var err error
				if rec, ok, err = ts.db.ActivePull(ctx, proc.url(), odsCode); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			cancel() // the target stops, its pull left resumable
			if err := <-done; err == nil {
				continue // finished before it could be interrupted
			}
			now, _, err := ts.db.ActivePull(ctx, proc.url(), odsCode)
			if err != nil {
				t.Fatal(err)
			}
			if now.Manifest == nil {
				break
			}
			t.Logf("attempt %d: the manifest came before the interruption; again", attempt)
		}
		proc.kill()
		job, err := jobs.Job(ctx, path.Base(rec.StatusURL))
		if err != nil {
			t.Fatal(err)
		}
		job.Status, job.Error, job.Files = dtm.JobFailed, "export failed: interrupted by a restart", nil
		job.LeaseHolder, job.LeaseUntil = "", time.Time{}
		if err := jobs.UpdateJob(ctx, job); err != nil {
			t.Fatal(err)
		}
		proc.start()
		res, err := ts.puller.Pull(ctx, odsCode)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Resumed || !res.Restarted || !res.Since.Equal(rec.Since) {
			t.Fatalf("pull after the job failed: resumed %v, restarted %v, since %v (was %v)", res.Resumed, res.Restarted, res.Since, rec.Since)
		}
		assertMigrated(t, src, ts)
	})
}
