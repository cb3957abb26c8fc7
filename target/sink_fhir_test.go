package target_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/ukcore"
)

// fhirServer is a FHIR R4 server on loopback that really processes
// transaction Bundles (PUT and DELETE entries, all or nothing) and keeps
// the resources. It can be told to fail or refuse transactions.
type fhirServer struct {
	url string

	mu           sync.Mutex
	res          map[string][]byte // "Type/id" → JSON as received
	transactions int               // committed
	fail         int               // answer the next fail transactions with failStatus
	failStatus   int
	drop         int    // close the connection on the next drop transactions
	reject       string // refuse every transaction holding this "Type/id"
	unnamed      bool   // and do not say which entry it was
}

func startFHIRServer(tb testing.TB) *fhirServer {
	tb.Helper()
	s := &fhirServer{res: map[string][]byte{}, failStatus: http.StatusServiceUnavailable}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(srv.Close)
	s.url = srv.URL + "/fhir"
	return s
}

type txBundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Request  struct {
			Method string `json:"method"`
			URL    string `json:"url"`
		} `json:"request"`
	} `json:"entry"`
}

func (s *fhirServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/fhir" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.drop > 0:
		s.drop--
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return
	case s.fail > 0:
		s.fail--
		w.Header().Set("Retry-After", "0")
		http.Error(w, "busy", s.failStatus)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/fhir+json" {
		s.outcome(w, http.StatusUnsupportedMediaType, "content type "+ct, "")
		return
	}
	var b txBundle
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.ResourceType != "Bundle" || b.Type != "transaction" {
		s.outcome(w, http.StatusBadRequest, "not a transaction Bundle", "")
		return
	}
	// Check every entry before changing anything: a transaction is atomic.
	type op struct {
		key  string
		json []byte
	}
	ops := make([]op, len(b.Entry))
	for i, e := range b.Entry {
		where := fmt.Sprintf("Bundle.entry[%d]", i)
		key := e.Request.URL
		switch e.Request.Method {
		case "PUT":
			h, err := fhir.ParseHeader(e.Resource)
			if err != nil || h.ResourceType+"/"+h.ID != key || e.FullURL != s.url+"/"+key {
				s.outcome(w, http.StatusBadRequest, "PUT url, fullUrl and resource disagree", where)
				return
			}
			ops[i] = op{key, e.Resource}
		case "DELETE":
			ops[i] = op{key: key}
		default:
			s.outcome(w, http.StatusBadRequest, "method "+e.Request.Method, where)
			return
		}
		if key == s.reject {
			if s.unnamed {
				where = ""
			}
			s.outcome(w, http.StatusUnprocessableEntity, "profile validation failed", where)
			return
		}
	}
	var resp bytes.Buffer
	resp.WriteString(`{"resourceType":"Bundle","type":"transaction-response","entry":[`)
	for i, o := range ops {
		status := "200 OK"
		if o.json == nil {
			delete(s.res, o.key)
			status = "204 No Content"
		} else {
			if _, ok := s.res[o.key]; !ok {
				status = "201 Created"
			}
			s.res[o.key] = o.json
		}
		if i > 0 {
			resp.WriteByte(',')
		}
		fmt.Fprintf(&resp, `{"response":{"status":%q}}`, status)
	}
	resp.WriteString(`]}`)
	s.transactions++
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Write(resp.Bytes())
}

func (s *fhirServer) outcome(w http.ResponseWriter, status int, msg, where string) {
	is := map[string]any{"severity": "error", "code": "processing", "diagnostics": msg}
	if where != "" {
		is["expression"] = []string{where}
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"resourceType": "OperationOutcome", "issue": []any{is}})
}

func (s *fhirServer) set(f func(s *fhirServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *fhirServer) state() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]byte, len(s.res))
	for k, v := range s.res {
		out[k] = v
	}
	return out
}

// sinkPuller is pullerFor with sinks.
func sinkPuller(tb testing.TB, srcURL string, db targetDB, workDir string, validate bool, sinks ...target.Sink) *target.Puller {
	tb.Helper()
	c, err := target.NewClient(srcURL, target.ClientOptions{Logger: quietLogger(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := target.Config{Store: db, State: db, Client: c, WorkDir: workDir, Logger: quietLogger(), BatchSize: 500, Sinks: sinks}
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

func mustFHIRSink(tb testing.TB, url string, o target.FHIRSinkOptions) *target.FHIRSink {
	tb.Helper()
	o.Logger, o.MinBackoff, o.MaxBackoff = quietLogger(), time.Millisecond, 5*time.Millisecond
	s, err := target.NewFHIRSink(url, o)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// assertSinkEqual checks a sink's resources are exactly the target
// store's live resources, with the same JSON bytes.
func assertSinkEqual(tb testing.TB, name string, sink map[string][]byte, tgt dtm.Store) {
	tb.Helper()
	want := liveState(tb, tgt)
	var missing, differ, extra []string
	for k, c := range want {
		if g, ok := sink[k]; !ok {
			missing = append(missing, k)
		} else if !bytes.Equal(g, c.JSON) {
			differ = append(differ, k)
		}
	}
	for k := range sink {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(differ)+len(extra) > 0 {
		tb.Fatalf("%s sink differs from the target store (%d resources): missing %.5v, differ %.5v, extra %.5v",
			name, len(want), missing, differ, extra)
	}
}

// checkpoint returns the target's checkpoint for the test practice.
func checkpoint(tb testing.TB, db targetDB, source string) time.Time {
	tb.Helper()
	cp, err := db.Checkpoint(tb.Context(), source, testODS)
	if err != nil {
		tb.Fatal(err)
	}
	return cp.TransactionTime
}

// TestFHIRSink_Pull delivers an initial extract and a delta (updates,
// deletes, new patients, one invalid resource) to a FHIR server through
// 503s, 429s and dropped connections: the server ends equal to the target
// store, which is equal to the source. A transaction the server refuses
// fails the pull with an error naming the entry and leaves the checkpoint
// where it was; the pull then resumes and completes.
func TestFHIRSink_Pull(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := mustSource(t, map[bool]int{false: 6, true: 3}[raceEnabled])
	tgt := mustOpen(t, filepath.Join(t.TempDir(), "target.db"))
	work := t.TempDir()
	srv := startFHIRServer(t)
	sink := mustFHIRSink(t, srv.url, target.FHIRSinkOptions{BatchSize: 50})

	srv.set(func(s *fhirServer) { s.fail, s.drop = 2, 1 })
	first, err := sinkPuller(t, src.url, tgt, work, false, sink).Pull(ctx, testODS)
	if err != nil {
		t.Fatal(err)
	}
	assertMigrated(t, src.db, tgt)
	assertSinkEqual(t, "fhir", srv.state(), tgt)
	if srv.transactions < int(first.Counts.Applied/50) {
		t.Fatalf("%d transactions for %d resources in batches of 50", srv.transactions, first.Counts.Applied)
	}

	t.Run("Delta", func(t *testing.T) {
		src.change(t, 10, 5, 2)
		patient := liveOf(t, src.db, "Patient")[0].JSON
		bad := regexp.MustCompile(`"id":"[^"]+"`).ReplaceAll(patient, []byte(`"id":"bad-nhs"`))
		bad = regexp.MustCompile(`("system":"https://fhir.nhs.uk/Id/nhs-number","value":")\d+`).ReplaceAll(bad, []byte("${1}1234567890"))
		src.load(t, bad)
		victim := "Observation/" + changedObservation(t, src, first.TransactionTime)
		p := sinkPuller(t, src.url, tgt, work, true, sink)

		t.Run("ErrRefused", func(t *testing.T) {
			for _, unnamed := range []bool{false, true} {
				srv.set(func(s *fhirServer) { s.reject, s.unnamed, s.fail, s.failStatus = victim, unnamed, 1, 429 })
				_, err := p.Pull(ctx, testODS)
				var re *target.FHIRRefusedError
				if !errors.As(err, &re) || re.Ref.String() != victim || re.Method != "PUT" || re.Status != 422 ||
					!strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), "profile validation failed") {
					t.Fatalf("unnamed %t: error %v, want a refusal naming %s", unnamed, err, victim)
				}
				if cp := checkpoint(t, tgt, src.url); !cp.Equal(first.TransactionTime) {
					t.Fatalf("checkpoint moved to %v on a sink failure", cp)
				}
			}
		})
		t.Run("ErrUnavailable", func(t *testing.T) {
			srv.set(func(s *fhirServer) { s.reject, s.fail, s.failStatus = "", 1000, 503 })
			p := sinkPuller(t, src.url, tgt, work, true, mustFHIRSink(t, srv.url, target.FHIRSinkOptions{MaxAttempts: 3}))
			if _, err := p.Pull(ctx, testODS); err == nil || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "(3 attempts)") {
				t.Fatalf("error %v, want the server's 503", err)
			}
			if cp := checkpoint(t, tgt, src.url); !cp.Equal(first.TransactionTime) {
				t.Fatalf("checkpoint moved to %v on a sink failure", cp)
			}
		})
		srv.set(func(s *fhirServer) { s.reject, s.fail, s.failStatus = "", 0, 503 })
		second, err := p.Pull(ctx, testODS)
		if err != nil {
			t.Fatal(err)
		}
		if !second.Resumed || second.Counts.Quarantined != 1 || second.Counts.Deleted != 5 {
			t.Fatalf("second pull %+v", second)
		}
		if cp := checkpoint(t, tgt, src.url); !cp.Equal(second.TransactionTime) {
			t.Fatalf("checkpoint %v, want %v", cp, second.TransactionTime)
		}
		assertSinkEqual(t, "fhir", srv.state(), tgt)
		if _, ok := srv.state()["Patient/bad-nhs"]; ok {
			t.Fatal("a quarantined resource reached the sink")
		}
		// The source withdraws the invalid patient: then all three agree.
		if _, err := src.db.Apply(ctx, testODS, []dtm.Write{{Type: "Patient", ID: "bad-nhs", Op: dtm.OpDelete}}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Pull(ctx, testODS); err != nil {
			t.Fatal(err)
		}
		assertMigrated(t, src.db, tgt)
		assertSinkEqual(t, "fhir", srv.state(), tgt)
	})
}

// changedObservation returns the id of an Observation changed at the
// source after since.
func changedObservation(tb testing.TB, src *testSource, since time.Time) string {
	tb.Helper()
	for _, c := range liveOf(tb, src.db, "Observation") {
		if c.CommitTime.After(since) {
			return c.ID
		}
	}
	tb.Fatal("no Observation changed")
	return ""
}
