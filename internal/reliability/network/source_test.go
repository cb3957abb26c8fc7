package network_test

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/bulk"
	"github.com/dtm-project/dtm/internal/faultproxy"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
)

// ods is the practice every test migrates.
const ods = "A81001"

var longFlag = flag.Bool("long", false, "run the long mode: many more trials (also DTM_RELIABILITY_LONG=1)")

// long reports whether the long mode was asked for.
func long() bool { return *longFlag || os.Getenv("DTM_RELIABILITY_LONG") == "1" }

// quietLogger discards logs unless DTM_TEST_LOG is set.
func quietLogger() *slog.Logger {
	if os.Getenv("DTM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testSource is a real source on loopback, composed as "dtm source serve
// --auth none" composes it: the Bulk Data server and the control plane
// (status, ingest, digests) over one SQLite store.
type testSource struct {
	db     *sqlite.DB
	url    string // where the server listens
	base   string // the base URL it builds links on: the proxy's, when there is one
	proxy  *faultproxy.Proxy
	opts   synth.Options
	sim    *synth.Simulator
	joined int // patients registered by change
}

// sourceOptions shape a test source.
type sourceOptions struct {
	patients  int
	seed      uint64
	proxy     *faultproxy.Options // nil: no proxy
	fileSize  int                 // resources per export file (bulk.Config.MaxFileResources)
	maxActive int                 // exports in progress per client
	// caller, when set, names the client of a request (bulk.Config.Caller).
	caller func(r *http.Request) (string, []string)
}

// mustSource starts a source holding a generated practice, with a
// fault-injecting proxy in front of it when o.proxy is set.
func mustSource(tb testing.TB, o sourceOptions) *testSource {
	tb.Helper()
	ctx := context.Background()
	db := mustOpen(tb, filepath.Join(tb.TempDir(), "source.db"))
	if _, err := db.CreatePractice(ctx, dtm.Practice{ODS: ods, Name: "Test Surgery"}); err != nil {
		tb.Fatal(err)
	}
	s := &testSource{db: db, opts: synth.Options{Practice: ods, Patients: o.patients, Seed: o.seed, Base: synth.DefaultBase}}
	in := &source.Ingester{Journal: db, Logger: quietLogger()}
	if _, err := in.LoadGenerated(ctx, ods, s.opts); err != nil {
		tb.Fatal(err)
	}
	sim, err := synth.NewSimulator(s.opts, o.seed, synth.DefaultBase)
	if err != nil {
		tb.Fatal(err)
	}
	s.sim = sim
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.url = "http://" + ln.Addr().String()
	s.base = s.url
	if o.proxy != nil {
		if s.proxy, err = faultproxy.New(s.url, *o.proxy); err != nil {
			tb.Fatal(err)
		}
		if s.base, err = s.proxy.Listen(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { s.proxy.Close() })
	}
	log := quietLogger()
	bs := bulk.NewServer(bulk.Config{Journal: db, Practices: db, Jobs: db, BaseURL: s.base, Logger: log,
		MaxFileResources: o.fileSize, MaxActiveJobs: o.maxActive, Caller: o.caller})
	mux := http.NewServeMux()
	mux.Handle("/fhir/", bs.Handler())
	ctl := &source.Handler{Store: db, Ingester: in, Clock: dtm.SystemClock{}, Logger: log}
	ctl.Routes(mux)
	ctl.IssueRoutes(mux)
	srv := &http.Server{Handler: auth.AllowAll(mux), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { bs.Run(ctx); close(done) }()
	tb.Cleanup(func() { srv.Close(); cancel(); <-done })
	return s
}

// change makes activity at the source: d of simulated practice activity
// (consultations, prescriptions, amendments, deletions, registrations; few
// in a small practice), then amendments of `updates` Observations, deletion
// of `deletes` live Conditions or Observations, and `joiners` new patients
// with their whole record. It returns the number of writes applied.
func (s *testSource) change(tb testing.TB, d time.Duration, updates, deletes, joiners int) int {
	tb.Helper()
	n, err := s.tryChange(d, updates, deletes, joiners)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// tryChange is change returning its error; it may run on any goroutine
// but not concurrently with itself.
func (s *testSource) tryChange(d time.Duration, updates, deletes, joiners int) (int, error) {
	ctx := context.Background()
	f := &source.Feed{Store: s.db, Practice: ods, Sim: s.sim, Watermark: func(time.Time) time.Time { return time.Now() }}
	st, err := f.Run(ctx, s.sim.Now().Add(d), 6*time.Hour, nil)
	if err != nil {
		return 0, err
	}
	applied := st.Applied
	latest := map[string]dtm.Change{}
	var order []string
	head, err := s.db.Head(ctx)
	if err != nil {
		return 0, err
	}
	err = s.db.Changes(ctx, dtm.ChangeQuery{Practice: ods, Until: head.Seq}, func(c dtm.Change) error {
		k := c.Type + "/" + c.ID
		if _, ok := latest[k]; !ok {
			order = append(order, k)
		}
		latest[k] = c
		return nil
	})
	if err != nil {
		return 0, err
	}
	var writes []dtm.Write
	for _, k := range order {
		c := latest[k]
		if c.Op != dtm.OpUpsert {
			continue
		}
		switch {
		case updates > 0 && c.Type == "Observation" && bytes.Contains(c.JSON, []byte(`"status":"final"`)):
			w, err := source.ResourceWrite(bytes.Replace(c.JSON, []byte(`"status":"final"`), []byte(`"status":"amended"`), 1))
			if err != nil {
				return 0, err
			}
			writes = append(writes, w)
			updates--
		case deletes > 0 && (c.Type == "Condition" || c.Type == "Observation"):
			writes = append(writes, dtm.Write{Type: c.Type, ID: c.ID, Op: dtm.OpDelete})
			deletes--
		}
	}
	for range joiners {
		err := synth.GeneratePatient(s.opts, s.opts.Patients+1000+s.joined, func(_ string, b []byte) error {
			w, err := source.ResourceWrite(append([]byte(nil), b...))
			writes = append(writes, w)
			return err
		})
		if err != nil {
			return 0, err
		}
		s.joined++
	}
	if len(writes) > 0 {
		c, err := s.db.Apply(ctx, ods, writes)
		if err != nil {
			return 0, err
		}
		applied += c.Applied
	}
	return applied, nil
}

func mustOpen(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{Logger: quietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// Client timing used through the proxy: short backoffs so that trials are
// fast. An attempt that hears nothing for clientStall is given up (longer
// under the race detector, where a busy source is slow to answer at all);
// the proxy's stalls last longer than that.
const maxRetryAfter = 1500 * time.Millisecond

var (
	clientStall = map[bool]time.Duration{false: 1500 * time.Millisecond, true: 4 * time.Second}[raceEnabled]
	proxyStall  = 3 * clientStall
)

// newClient returns a target client for base with the test timings,
// making each request at most attempts times.
func newClient(tb testing.TB, base string, attempts int) *target.Client {
	tb.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	c, err := target.NewClient(base, target.ClientOptions{
		HTTP: &http.Client{Transport: tr}, Logger: quietLogger(), MaxAttempts: attempts,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxRetryAfter: maxRetryAfter,
		StallTimeout: clientStall,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// testTarget is a target store with a puller pulling through the proxy and
// a fault-free client for reconciling straight with the source.
type testTarget struct {
	db     *sqlite.DB
	puller *target.Puller
	client *target.Client // through the proxy
	direct *target.Client // to the source itself
}

// mustTarget returns a target pulling from src through its proxy, with
// `attempts` attempts per request.
func mustTarget(tb testing.TB, src *testSource, attempts int) *testTarget {
	tb.Helper()
	dir := tb.TempDir()
	t := &testTarget{db: mustOpen(tb, filepath.Join(dir, "target.db")), client: newClient(tb, src.base, attempts),
		direct: newClient(tb, src.url, 6)}
	p, err := target.NewPuller(target.Config{Store: t.db, State: t.db, Client: t.client,
		WorkDir: filepath.Join(dir, "work"), Logger: quietLogger(), BatchSize: 500, Parallel: 3})
	if err != nil {
		tb.Fatal(err)
	}
	t.puller = p
	return t
}

// checkpoint returns the target's checkpoint of the practice.
func (t *testTarget) checkpoint(tb testing.TB) time.Time {
	tb.Helper()
	cp, err := t.db.Checkpoint(context.Background(), t.client.Source(), ods)
	if err != nil {
		tb.Fatal(err)
	}
	return cp.TransactionTime
}

// mustMatch reconciles the target with the source at the checkpoint,
// straight (no faults), and fails unless they hold exactly the same
// resources (type, id and content hash).
func (t *testTarget) mustMatch(tb testing.TB) target.ReconcileReport {
	tb.Helper()
	// The checkpoint is keyed by the proxy's URL; the direct client reads
	// the same source.
	rep, err := target.Reconcile(context.Background(), t.direct, t.db, ods,
		target.ReconcileOptions{At: t.checkpoint(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	if rep.Result != target.ReconcileMatch || rep.SourceDigest.Total == 0 {
		tb.Fatalf("target differs from the source: %s (source %d resources, target %d; %d differences: %+v)",
			rep.Result, rep.SourceDigest.Total, rep.TargetDigest.Total, len(rep.Differences), first(rep.Differences, 5))
	}
	return rep
}

func first[T any](s []T, n int) []T { return s[:min(n, len(s))] }
