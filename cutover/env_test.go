package cutover_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/bulk"
	"github.com/dtm-project/dtm/cutover"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/ukcore"
)

// testODS is the practice every test migrates.
const testODS = "A81001"

// vclock is virtual time that still moves: Now is the wall clock shifted
// by an offset that Set jumps forward, so that days pass instantly while
// pulls and steps still take measurable (real) time.
type vclock struct {
	mu     sync.Mutex
	offset time.Duration
}

func newVClock(t time.Time) *vclock { return &vclock{offset: time.Until(t)} }

func (c *vclock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset).UTC()
}

// Set moves the clock to t; it never moves it backwards.
func (c *vclock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := time.Until(t); d > c.offset {
		c.offset = d
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// env is a real source on loopback (SQLite store, Bulk Data server, the
// control plane with the freeze routes) and a target SQLite store holding
// the target's data, pull bookkeeping and cutover records, all on one
// virtual clock.
type env struct {
	t      testing.TB
	ctx    context.Context
	clock  *vclock
	src    *sqlite.DB
	srcURL string
	tgt    *sqlite.DB
	opts   synth.Options
	sim    *synth.Simulator
	svc    *cutover.Service
	phases *cutover.PhaseTimer
	puller *target.Puller
}

// newEnv starts a source holding a generated practice of n patients at
// start, and an empty target that validates what it pulls.
func newEnv(tb testing.TB, n int, start time.Time) *env {
	tb.Helper()
	return newEnvValidate(tb, n, start, true)
}

// newEnvValidate is newEnv, validating with ukcore only when validate is
// set (the runbook's crash tests skip it: it is not what they test).
func newEnvValidate(tb testing.TB, n int, start time.Time, validate bool) *env {
	tb.Helper()
	ctx := context.Background()
	e := &env{t: tb, ctx: ctx, clock: newVClock(start), opts: synth.Options{Practice: testODS, Patients: n, Seed: 7}}
	dir := tb.TempDir()
	e.src = mustOpen(tb, filepath.Join(dir, "source.db"), e.clock)
	e.tgt = mustOpen(tb, filepath.Join(dir, "target.db"), e.clock)
	if _, err := e.src.CreatePractice(ctx, dtm.Practice{ODS: testODS, Name: "Test Surgery", CreatedAt: start}); err != nil {
		tb.Fatal(err)
	}
	if _, err := e.tgt.CreatePractice(ctx, dtm.Practice{ODS: testODS, Name: "Test Surgery", CreatedAt: start}); err != nil {
		tb.Fatal(err)
	}
	in := &source.Ingester{Journal: e.src, Logger: quiet()}
	if _, err := in.LoadGenerated(ctx, testODS, e.opts); err != nil {
		tb.Fatal(err)
	}
	if err := e.src.SetWatermark(ctx, testODS, e.clock.Now()); err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	ctl := &source.Handler{Store: e.src, Ingester: in, Clock: e.clock, Logger: quiet()}
	ctl.Routes(mux)
	ctl.FreezeRoutes(mux)
	srv := httptest.NewUnstartedServer(allowAll(mux))
	srv.Start()
	e.srcURL = srv.URL
	bs := bulk.NewServer(bulk.Config{Journal: e.src, Practices: e.src, Jobs: e.src, BaseURL: srv.URL, Clock: e.clock,
		Logger: quiet(), MaxFileResources: 2000, MaxActiveJobs: 20})
	mux.Handle("/", bs.Handler())
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { bs.Run(runCtx); close(done) }()
	tb.Cleanup(func() { srv.Close(); cancel(); <-done })

	e.phases = &cutover.PhaseTimer{Clock: e.clock}
	e.puller = e.newPuller(tb, validate)
	e.svc = &cutover.Service{Store: e.tgt, State: e.tgt, Issues: e.src, Clock: e.clock, Logger: quiet()}
	return e
}

// allowAll serves every request as an admin principal (--auth none).
func allowAll(next http.Handler) http.Handler {
	p := dtm.Principal{Client: "test", Practices: []string{dtm.AllPractices}, Ingest: true, Admin: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(dtm.NewContextWithPrincipal(r.Context(), p)))
	})
}

func mustOpen(tb testing.TB, path string, clock dtm.Clock) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Clock: clock, Logger: quiet()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func (e *env) newPuller(tb testing.TB, validate bool) *target.Puller {
	tb.Helper()
	c, err := target.NewClient(e.srcURL, target.ClientOptions{Logger: quiet(), Clock: e.clock,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := target.Config{Store: e.tgt, State: e.tgt, Client: c, WorkDir: tb.TempDir(),
		Clock: e.clock, Logger: quiet(), BatchSize: 500, Progress: e.phases}
	if validate {
		v, err := ukcore.NewValidator(ukcore.Options{PracticeODS: testODS, Now: e.clock.Now})
		if err != nil {
			tb.Fatal(err)
		}
		cfg.Validator = v
	}
	p, err := target.NewPuller(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// runner returns a new runner, as a new process would create, run by by.
func (e *env) runner(by string) *cutover.Runner {
	return &cutover.Runner{
		Store: e.tgt, State: e.tgt, Puller: e.puller, Phases: e.phases,
		Freezer:    &cutover.HTTPFreezer{Source: e.srcURL},
		Reconciler: cutover.JournalReconciler{Source: e.src, Target: e.tgt, State: e.tgt, Clock: e.clock},
		Clock:      e.clock, Logger: quiet(), By: by,
	}
}

// liveStep is the simulated activity's batch interval: the source system
// pushes its changes and its watermark every liveStep.
const liveStep = 8 * time.Hour

// live simulates the practice's activity at the source from the clock's
// time (the first time; then from where it stopped) up to t, in steps of
// liveStep, moving the clock along.
func (e *env) live(t time.Time) {
	e.t.Helper()
	if e.sim == nil {
		sim, err := synth.NewSimulator(e.opts, 1, e.clock.Now())
		if err != nil {
			e.t.Fatal(err)
		}
		e.sim = sim
	}
	f := &source.Feed{Store: e.src, Practice: testODS, Sim: e.sim}
	_, err := f.Run(e.ctx, t, liveStep, func(_ context.Context, v time.Time) error { e.clock.Set(v); return nil })
	if err != nil {
		e.t.Fatal(err)
	}
	e.clock.Set(t)
}

// pull pulls the practice into the target at the clock's time.
func (e *env) pull() target.PullResult {
	e.t.Helper()
	res, err := e.puller.Pull(e.ctx, testODS)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// plan records the plan for the cutover Friday date.
func (e *env) plan(date string) dtm.Plan {
	e.t.Helper()
	p, err := e.svc.CreatePlan(e.ctx, cutover.PlanRequest{Practice: testODS, SourceSupplier: "Old Systems Ltd",
		TargetSupplier: "New Systems plc", SourceURL: e.srcURL, Date: date, By: "Pat Planner"})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// sign records the three confirmations directly (bypassing readiness), for
// tests of the runbook alone.
func (e *env) sign(p dtm.Plan) {
	e.t.Helper()
	for _, kind := range []string{dtm.ConfirmReadiness, dtm.ConfirmSourceStatement, dtm.ConfirmTargetStatement} {
		c := dtm.Confirmation{ID: p.ID + "-" + kind, Plan: p.ID, Practice: p.Practice, Kind: kind, Name: "Sam Signer",
			Role: "Lead", Organisation: "Org", Statement: cutover.DefaultStatement(kind, p), At: e.clock.Now()}
		c.Digest = cutover.Seal(c)
		if err := e.tgt.AddConfirmation(e.ctx, c); err != nil {
			e.t.Fatal(err)
		}
	}
}

// frozen reports whether the source has frozen the practice.
func (e *env) frozen() bool {
	e.t.Helper()
	p, err := e.src.Practice(e.ctx, testODS)
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Frozen
}
