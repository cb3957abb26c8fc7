package bulk

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

func TestStatus_Expired(t *testing.T) {
	var offset atomic.Int64
	e := newTestEnv(t, true, func(c *Config) {
		c.JobTTL = time.Hour
		c.Clock = dtm.ClockFunc(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	})
	e.apply(pA, patient("p1", true))
	loc := e.kickoff("/fhir/$export")
	m := e.wait(loc)
	offset.Store(int64(2 * time.Hour))
	wantOutcome(t, e.do("GET", loc, nil), http.StatusGone, "expired")
	wantOutcome(t, e.do("GET", m.Output[0].URL, nil), http.StatusGone, "expired")
	n, err := e.db.DeleteExpiredJobs(e.ctx, time.Now().Add(2*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredJobs = %d, %v", n, err)
	}
	wantOutcome(t, e.do("GET", loc, nil), http.StatusNotFound, "no such export")
}

func TestWorker_TakesOverExpiredLease(t *testing.T) {
	e := newTestEnv(t, false, nil)
	e.apply(pA, patient("p1", true))
	loc := e.kickoff("/fhir/$export")
	id := loc[strings.LastIndex(loc, "/")+1:]
	job, err := e.db.Job(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// Another replica claimed it and died mid-plan.
	job.Status, job.LeaseHolder, job.LeaseUntil = dtm.JobRunning, "dead-replica", time.Now().Add(-time.Second)
	if err := e.db.UpdateJob(e.ctx, job); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { e.srv.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if x := e.fetch(e.wait(loc)); len(x.out) != 1 {
		t.Fatalf("taken-over export has %d resources, want 1", len(x.out))
	}
}

// failingJournal fails every Changes call with an internal error.
type failingJournal struct{ testStore }

func (failingJournal) Changes(context.Context, dtm.ChangeQuery, func(dtm.Change) error) error {
	return errors.New("disk on fire at /var/lib/dtm (patient p1)")
}

func TestWorker_Failure(t *testing.T) {
	var logs bytes.Buffer
	e := newTestEnv(t, true, func(c *Config) {
		c.Journal = failingJournal{c.Jobs.(testStore)}
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	e.apply(pA, patient("p1", true))
	resp := e.do("GET", e.kickoff("/fhir/$export"), nil)
	for deadline := time.Now().Add(10 * time.Second); resp.StatusCode == http.StatusAccepted && time.Now().Before(deadline); {
		read(t, resp)
		time.Sleep(5 * time.Millisecond)
		resp = e.do("GET", resp.Request.URL.String(), nil)
	}
	wantOutcome(t, resp, http.StatusInternalServerError, "export failed: internal error")
	if !strings.Contains(logs.String(), "disk on fire") {
		t.Errorf("internal detail not logged: %s", logs.String())
	}
}
