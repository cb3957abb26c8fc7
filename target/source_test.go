package target_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/bulk"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/ukcore"
)

// testODS is the practice every end-to-end test migrates.
const testODS = "A81001"

// testSource is a real source on loopback: a SQLite store loaded with a
// synthetic practice, served by the Bulk Data server, with the practice
// status endpoint.
type testSource struct {
	db   *sqlite.DB
	url  string
	opts synth.Options
}

// mustSource starts a source holding a generated practice of n patients,
// without authentication (--auth none).
func mustSource(tb testing.TB, n int) *testSource {
	tb.Helper()
	return startSourceAuth(tb, n, nil)
}

// startSourceAuth starts a source holding a generated practice of n patients.
// With authSrv (which builds the auth server over the source's store), every /fhir/ and /dtm/ request needs one of its tokens,
// manifests say requiresAccessToken, and its discovery and token
// endpoints are served.
func startSourceAuth(tb testing.TB, n int, authSrv func(db *sqlite.DB, tokenURL string) *auth.Server) *testSource {
	tb.Helper()
	db := mustOpen(tb, filepath.Join(tb.TempDir(), "source.db"))
	ctx := context.Background()
	if _, err := db.CreatePractice(ctx, dtm.Practice{ODS: testODS, Name: "Test Surgery"}); err != nil {
		tb.Fatal(err)
	}
	s := &testSource{db: db, opts: synth.Options{Practice: testODS, Patients: n, Seed: 7}}
	var buf bytes.Buffer
	err := synth.Generate(ctx, s.opts, func(_ string, b []byte) error {
		buf.Write(b)
		buf.WriteByte('\n')
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	s.load(tb, buf.Bytes())
	srv := httptest.NewUnstartedServer(nil)
	s.url = "http://" + srv.Listener.Addr().String()
	bs := bulk.NewServer(bulk.Config{Journal: db, Practices: db, Jobs: db, BaseURL: s.url, Logger: quietLogger(),
		MaxFileResources: 2000, MaxActiveJobs: 20, RequiresAccessToken: authSrv != nil})
	mux := http.NewServeMux()
	mux.Handle("/fhir/", bs.Handler())
	mux.HandleFunc("GET /dtm/v1/practices/"+testODS+"/status", func(w http.ResponseWriter, r *http.Request) {
		serveStatus(w, r, db)
	})
	srv.Config.Handler = mux
	if authSrv != nil {
		a := authSrv(db, s.url+auth.PathToken)
		outer := http.NewServeMux()
		a.Register(outer)
		outer.Handle("/", a.Middleware(mux))
		srv.Config.Handler = outer
	}
	srv.Start()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { bs.Run(ctx); close(done) }()
	tb.Cleanup(func() { srv.Close(); cancel(); <-done })
	return s
}

// serveStatus answers GET /dtm/v1/practices/{ods}/status as the source
// does (source/status.go), from the store.
func serveStatus(w http.ResponseWriter, r *http.Request, db *sqlite.DB) {
	ctx := r.Context()
	p, err := db.Practice(ctx, testODS)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	head, _ := db.Head(ctx)
	counts, _ := db.Counts(ctx, testODS, head.Seq)
	lag, state := dtm.Freshness(p, time.Now())
	json.NewEncoder(w).Encode(map[string]any{
		"practice": testODS, "lastUpdated": fhir.FormatInstant(p.LastUpdated), "lagSeconds": lag.Seconds(),
		"freshness": state, "transactionTime": fhir.FormatInstant(head.Time), "counts": counts,
	})
}

// load ingests NDJSON (upserts) into the source's practice, as the
// source's ingest does: header, compartment and membership from package
// fhir, batches of 1000.
func (s *testSource) load(tb testing.TB, ndjson []byte) {
	tb.Helper()
	var batch []dtm.Write
	flush := func() {
		if _, err := s.db.Apply(context.Background(), testODS, batch); err != nil {
			tb.Fatal(err)
		}
		batch = batch[:0]
	}
	for line := range bytes.Lines(ndjson) {
		line = bytes.TrimSpace(line)
		h, err := fhir.ParseHeader(line)
		if err != nil {
			tb.Fatal(err)
		}
		patient, _ := fhir.Compartment(h.ResourceType, line)
		batch = append(batch, dtm.Write{Type: h.ResourceType, ID: h.ID, Op: dtm.OpUpsert, JSON: line,
			Patient: patient, Member: h.ResourceType == "Patient" && fhir.PatientActive(line)})
		if len(batch) == 1000 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
}

// change makes a known delta at the source: it amends the status of
// `updates` Observations, deletes `deletes` Conditions and registers
// `joiners` new patients with their whole record. It returns the number of
// resources a Group export since before the change must carry.
func (s *testSource) change(tb testing.TB, updates, deletes, joiners int) int {
	tb.Helper()
	ctx := context.Background()
	live := map[string][]dtm.Change{}
	head, _ := s.db.Head(ctx)
	err := s.db.Changes(ctx, dtm.ChangeQuery{Practice: testODS, Until: head.Seq}, func(c dtm.Change) error {
		if c.Op == dtm.OpUpsert {
			live[c.Type] = append(live[c.Type], c)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	moved := 0
	for _, c := range live["Observation"] {
		if moved == updates {
			break
		}
		if b := bytes.Replace(c.JSON, []byte(`"status":"final"`), []byte(`"status":"amended"`), 1); !bytes.Equal(b, c.JSON) {
			buf.Write(b)
			buf.WriteByte('\n')
			moved++
		}
	}
	for i := range joiners {
		err := synth.GeneratePatient(s.opts, s.opts.Patients+i, func(_ string, b []byte) error {
			buf.Write(b)
			buf.WriteByte('\n')
			moved++
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	s.load(tb, buf.Bytes())
	var dels []dtm.Write
	for _, c := range live["Condition"][:deletes] {
		dels = append(dels, dtm.Write{Type: c.Type, ID: c.ID, Op: dtm.OpDelete})
	}
	if _, err := s.db.Apply(ctx, testODS, dels); err != nil {
		tb.Fatal(err)
	}
	return moved + deletes
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

// pullerFor returns a puller from src into db, with fast polling,
// validating with ukcore when validate is set.
func pullerFor(tb testing.TB, srcURL string, db targetDB, workDir string, validate bool) *target.Puller {
	tb.Helper()
	return pullerAuth(tb, srcURL, db, workDir, validate, nil)
}

// targetDB is a target store with its state: *sqlite.DB or *postgres.DB.
type targetDB interface {
	dtm.Store
	dtm.TargetState
}

// pullerAuth is pullerFor with an Authorizer.
func pullerAuth(tb testing.TB, srcURL string, db targetDB, workDir string, validate bool, a target.Authorizer) *target.Puller {
	tb.Helper()
	c, err := target.NewClient(srcURL, target.ClientOptions{
		Logger: quietLogger(), MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		MaxRetryAfter: 50 * time.Millisecond, Auth: a,
	})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := target.Config{Store: db, State: db, Client: c, WorkDir: workDir, Logger: quietLogger(), BatchSize: 500}
	if validate {
		cfg.NewValidator = func(resolve func(string) bool) (target.Validator, error) {
			return ukcore.NewValidator(ukcore.Options{PracticeODS: testODS, Resolve: resolve})
		}
	}
	p, err := target.NewPuller(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
