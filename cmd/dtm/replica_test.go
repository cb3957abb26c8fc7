package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/internal/pgtest"
	"github.com/dtm-project/dtm/postgres"
	"github.com/dtm-project/dtm/reconcile"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
)

// replicaSet is the fixture of the replica tests: one PostgreSQL database
// holding a generated practice and a registered target client, a load
// balancer URL that every replica names as its base URL (as in production:
// token audience, Content-Location and file URLs), and the replicas.
type replicaSet struct {
	t     *testing.T
	dsn   string
	clock *virtualClock
	log   *slog.Logger
	src   *postgres.DB // the test's own connection to the shared database
	lb    *roundRobin
	lbURL string
	key   crypto.Signer
	kid   string
}

const replicaPractice = "A81001"

func newReplicaSet(t *testing.T) *replicaSet {
	t.Helper()
	ctx := t.Context()
	s := &replicaSet{t: t, dsn: pgtest.Start(t), clock: newVirtualClock(time.Now()), log: slog.New(slog.DiscardHandler)}
	s.src = s.open()
	if _, err := s.src.CreatePractice(ctx, dtm.Practice{ODS: replicaPractice, CreatedAt: s.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	in := &source.Ingester{Journal: s.src}
	if _, err := in.LoadGenerated(ctx, replicaPractice, synth.Options{Practice: replicaPractice, Patients: 20, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	var err error
	if s.key, err = auth.GenerateKey(auth.ES384, rand.Reader); err != nil {
		t.Fatal(err)
	}
	jwks, err := auth.PublicJWKS(s.key, auth.ES384)
	if err != nil {
		t.Fatal(err)
	}
	s.kid, _ = auth.Thumbprint(s.key)
	for id, limit := range map[string]int{"tss": 50, "tss-once": 1} {
		c := dtm.Client{ID: id, Name: "Target supplier", JWKS: string(jwks), Practices: []string{replicaPractice},
			AgreedRetrievalsPer24h: limit, CreatedAt: s.clock.Now()}
		if limit > 1 {
			c.AgreedBy, c.AgreedAt = "replica test", s.clock.Now()
		}
		if _, err := s.src.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	s.lb = newRoundRobin()
	lbSrv := httptest.NewServer(s.lb)
	t.Cleanup(lbSrv.Close)
	s.lbURL = lbSrv.URL
	return s
}

// open returns a new connection pool to the shared database, as each
// replica process has its own.
func (s *replicaSet) open() *postgres.DB {
	s.t.Helper()
	db, err := postgres.Open(s.t.Context(), s.dsn, postgres.Options{Clock: s.clock, Logger: s.log})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { db.Close() })
	return db
}

// start serves st as replica name with SMART auth on a new loopback port,
// with its workers running when workers is set.
func (s *replicaSet) start(name string, st dtm.Store, workers bool) *replica {
	s.t.Helper()
	r := s.prepare(name, st)
	r.hs.Start()
	if workers {
		r.startWorkers()
	}
	return r
}

// prepare returns replica name serving st, its port open but not yet
// serving (r.hs.Start) and its workers not started.
func (s *replicaSet) prepare(name string, st dtm.Store) *replica {
	s.t.Helper()
	srv, err := newSourceServer(st, s.clock, s.log, s.lbURL, true)
	if err != nil {
		s.t.Fatal(err)
	}
	r := &replica{name: name, hs: httptest.NewUnstartedServer(srv.handler), run: srv.run}
	r.addr = r.hs.Listener.Addr().String()
	s.t.Cleanup(r.stop)
	return r
}

// creds returns credentials of client that fetch tokens from replica r
// (from the load balancer when r is nil).
func (s *replicaSet) creds(client string, r *replica) *auth.ClientCredentials {
	hc := &http.Client{}
	if r != nil {
		hc.Transport = pinned{host: r.addr, base: http.DefaultTransport}
	}
	return &auth.ClientCredentials{TokenURL: s.lbURL + auth.PathToken, ClientID: client, Key: s.key, KeyID: s.kid,
		Clock: s.clock, HTTPClient: hc}
}

// token returns a fresh access token of client issued by replica r.
func (s *replicaSet) token(client string, r *replica) string {
	s.t.Helper()
	tok, err := s.creds(client, r).Token(s.t.Context())
	if err != nil {
		s.t.Fatalf("token from %s: %v", r.name, err)
	}
	return tok
}

// call sends a request for u (a URL on the load balancer) to replica r
// with token and returns the status, headers and body (gzip decoded).
func (s *replicaSet) call(r *replica, method, u, token string, gz bool) (int, http.Header, []byte) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.t.Context(), method, u, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Prefer", "respond-async")
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+token)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	hc := &http.Client{Transport: pinned{host: r.addr, base: &http.Transport{DisableCompression: true}}}
	resp, err := hc.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s on %s: %v", method, u, r.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		body, err = gunzipIf(resp.Header, body)
	}
	if err != nil {
		s.t.Fatalf("%s %s on %s: %v", method, u, r.name, err)
	}
	return resp.StatusCode, resp.Header, body
}

// kickoff starts a Group export on r and returns the status URL.
func (s *replicaSet) kickoff(r *replica, token string) string {
	s.t.Helper()
	status, h, body := s.call(r, "GET", s.lbURL+"/fhir/Group/"+replicaPractice+"/$export", token, false)
	if status != http.StatusAccepted || h.Get("Content-Location") == "" {
		s.t.Fatalf("kick-off on %s: %d %s", r.name, status, body)
	}
	return h.Get("Content-Location")
}

// replicaManifest is what the test reads of a manifest.
type replicaManifest struct {
	TransactionTime string `json:"transactionTime"`
	Output          []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int64  `json:"count"`
	} `json:"output"`
	Deleted []struct {
		URL string `json:"url"`
	} `json:"deleted"`
}

// poll polls statusURL on r until the manifest is ready, failing after a
// minute.
func (s *replicaSet) poll(r *replica, statusURL, token string) replicaManifest {
	s.t.Helper()
	deadline := time.After(time.Minute)
	for {
		status, _, body := s.call(r, "GET", statusURL, token, false)
		switch status {
		case http.StatusOK:
			var m replicaManifest
			if err := json.Unmarshal(body, &m); err != nil {
				s.t.Fatal(err)
			}
			return m
		case http.StatusAccepted:
		default:
			s.t.Fatalf("status on %s: %d %s", r.name, status, body)
		}
		select {
		case <-deadline:
			s.t.Fatalf("export %s not complete on %s after a minute", statusURL, r.name)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// groupScope returns what a Group export of the practice at the shared
// store's head must contain: content hash by "Type/id".
func (s *replicaSet) groupScope() map[string]string {
	s.t.Helper()
	ctx := s.t.Context()
	head, err := s.src.Head(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	d, kept, err := reconcile.Compute(ctx, s.src, replicaPractice, head, func(string) bool { return true })
	if err != nil {
		s.t.Fatal(err)
	}
	want := map[string]string{}
	for _, es := range kept {
		for _, e := range es {
			want[e.Type+"/"+e.ID] = e.Hash
		}
	}
	if int64(len(want)) != d.Total || len(want) == 0 {
		s.t.Fatalf("group scope: %d entries, digest total %d", len(want), d.Total)
	}
	return want
}

// download fetches every output file of m, alternately from the replicas
// given (each with its token), checks each file's count against the
// manifest, and returns content hash by "Type/id", failing on a resource
// seen twice.
func (s *replicaSet) download(m replicaManifest, rs []*replica, tokens []string) map[string]string {
	s.t.Helper()
	got := map[string]string{}
	for i, f := range m.Output {
		r, tok := rs[i%len(rs)], tokens[i%len(rs)]
		status, _, body := s.call(r, "GET", f.URL, tok, i%2 == 0)
		if status != http.StatusOK {
			s.t.Fatalf("file %s on %s: %d %s", f.URL, r.name, status, body)
		}
		lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
		if int64(len(lines)) != f.Count {
			s.t.Errorf("file %s from %s: %d lines, manifest says %d", f.URL, r.name, len(lines), f.Count)
		}
		for _, line := range lines {
			h, err := fhir.ParseHeader(line)
			if err != nil {
				s.t.Fatalf("file %s: %v", f.URL, err)
			}
			hash, err := fhir.ContentHash(line)
			if err != nil {
				s.t.Fatal(err)
			}
			key := h.ResourceType + "/" + h.ID
			if _, dup := got[key]; dup {
				s.t.Errorf("%s exported twice", key)
			}
			got[key] = hash
		}
	}
	return got
}

// sameSet reports every difference between want and got.
func sameSet(t *testing.T, want, got map[string]string) {
	t.Helper()
	n := 0
	for k, h := range want {
		if g, ok := got[k]; !ok || g != h {
			if n++; n <= 5 {
				t.Errorf("%s: got hash %q, want %q", k, g, h)
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			if n++; n <= 5 {
				t.Errorf("%s exported but not in the practice's Group scope", k)
			}
		}
	}
	if n > 0 {
		t.Errorf("%d differences between %d resources expected and %d downloaded", n, len(want), len(got))
	}
}

// TestReplicas runs two "dtm source serve" replicas (the command's own
// composition, SMART auth on) against one PostgreSQL database and shows
// that any replica serves any request (issue 9): export jobs, tokens,
// assertion replay and retrieval counts are shared through the store, a
// replica that dies while planning an export is taken over when its lease
// lapses, and a target pulling through a round-robin load balancer, with a
// replica stopped and started during the pull, ends equal to the source.
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two replicas; skipped with -short")
	}
	s := newReplicaSet(t)
	a := s.start("A", s.open(), true)
	b := s.start("B", s.open(), true)
	s.lb.set("", a.addr)
	s.lb.set("", b.addr)
	want := s.groupScope()

	t.Run("KickoffOnAPollOnBDownloadFromBoth", func(t *testing.T) {
		tokA, tokB := s.token("tss", a), s.token("tss", b)
		statusURL := s.kickoff(a, tokA)
		m := s.poll(b, statusURL, tokA) // a token issued by A, accepted by B
		got := s.download(m, []*replica{a, b}, []string{tokB, tokA})
		sameSet(t, want, got)
		if len(m.Deleted) != 0 {
			t.Errorf("initial export of a practice without deletes has %d deleted files", len(m.Deleted))
		}
		// The same file is the same bytes from either replica.
		_, _, fromA := s.call(a, "GET", m.Output[0].URL, tokA, true)
		_, _, fromB := s.call(b, "GET", m.Output[0].URL, tokB, false)
		if !bytes.Equal(fromA, fromB) {
			t.Errorf("file %s differs between replicas (%d and %d bytes)", m.Output[0].URL, len(fromA), len(fromB))
		}
		// Cancelled on B, gone on A.
		if status, _, body := s.call(b, "DELETE", statusURL, tokB, false); status != http.StatusAccepted {
			t.Fatalf("cancel on B: %d %s", status, body)
		}
		if status, _, _ := s.call(a, "GET", statusURL, tokA, false); status != http.StatusNotFound {
			t.Errorf("status on A after cancel on B: %d, want 404", status)
		}
	})

	t.Run("SharedAuthState", func(t *testing.T) {
		// A client assertion used at A is refused at B (jti replay store).
		c := s.creds("tss", nil)
		assertion, err := c.Assertion(s.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {auth.AssertionType},
			"client_assertion": {assertion}, "scope": {"system/*.rs"}}.Encode()
		for i, r := range []*replica{a, b} {
			hc := &http.Client{Transport: pinned{host: r.addr, base: http.DefaultTransport}}
			resp, err := hc.Post(s.lbURL+auth.PathToken, "application/x-www-form-urlencoded", strings.NewReader(form))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := []int{http.StatusOK, http.StatusUnauthorized}[i]; resp.StatusCode != want || (i == 1 && !strings.Contains(string(body), "jti")) {
				t.Errorf("assertion at %s: %d %s, want %d", r.name, resp.StatusCode, body, want)
			}
		}
		// One agreed retrieval per 24 h, counted across replicas (S7).
		tok := s.token("tss-once", b)
		onceURL := s.kickoff(a, tok)
		status, h, body := s.call(b, "GET", s.lbURL+"/fhir/Group/"+replicaPractice+"/$export", tok, false)
		if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
			t.Errorf("second kick-off in 24 h, on B: %d %s; want 429 with Retry-After", status, body)
		}
		// Every request is audited in the shared log, whichever replica served it.
		events, err := s.src.AuditEvents(t.Context(), dtm.AuditQuery{Client: "tss-once"})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range events {
			actions = append(actions, e.Action+"/"+e.Outcome)
		}
		for _, w := range []string{dtm.AuditToken + "/" + dtm.OutcomeSuccess, dtm.AuditKickoff + "/" + dtm.OutcomeSuccess, dtm.AuditKickoff + "/" + dtm.OutcomeDenied} {
			if !strings.Contains(strings.Join(actions, " "), w) {
				t.Errorf("audit log of tss-once %v lacks %s", actions, w)
			}
		}
		s.poll(b, onceURL, tok) // done before the next test claims jobs
	})

	t.Run("ReplicaDiesWhilePlanning", func(t *testing.T) {
		// Fresh replicas: C plans and dies holding the job lease; D takes
		// over. A and B plan nothing meanwhile.
		a.stopWorkers()
		b.stopWorkers()
		defer a.startWorkers()
		defer b.startWorkers()
		cs := newCrashable(s.open())
		cs.hold.Store(true)
		c := s.start("C", cs, true)
		d := s.start("D", s.open(), false)
		tok := s.token("tss", c)
		statusURL := s.kickoff(c, tok)
		select {
		case <-cs.planning:
		case <-time.After(time.Minute):
			t.Fatal("replica C did not start planning within a minute (does the planner read the journal through Changes or ChangeHeaders?)")
		}
		d.startWorkers()
		id := statusURL[strings.LastIndex(statusURL, "/")+1:]
		job, err := s.src.Job(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		holder, _ := cs.holder.Load().(string)
		if job.Status != dtm.JobRunning || holder == "" || job.LeaseHolder != holder {
			t.Fatalf("job %s: status %s, lease holder %q; want running, leased to C (%q)", id, job.Status, job.LeaseHolder, holder)
		}
		if status, h, _ := s.call(d, "GET", statusURL, tok, false); status != http.StatusAccepted || h.Get("X-Progress") == "" {
			t.Errorf("status on D while C plans: %d, X-Progress %q", status, h.Get("X-Progress"))
		}
		close(cs.crashed) // C dies: it can no longer write, so its lease stays
		c.stop()
		if job, err = s.src.Job(t.Context(), id); err != nil || job.LeaseHolder != holder {
			t.Fatalf("after C died: lease holder %q (%v), want C's %q", job.LeaseHolder, err, holder)
		}
		// The lease (30 s in package bulk) lapses; D claims and plans the job.
		s.clock.Set(s.clock.Now().Add(time.Minute))
		m := s.poll(d, statusURL, tok)
		// C comes back (a restart on the same database) and serves files too.
		c2 := s.start("C'", s.open(), true)
		got := s.download(m, []*replica{c2, d}, []string{tok, s.token("tss", c2)})
		sameSet(t, want, got)
	})

	t.Run("PullThroughLoadBalancer", func(t *testing.T) {
		ctx := t.Context()
		tgt, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "target.db"), sqlite.Options{Logger: s.log})
		if err != nil {
			t.Fatal(err)
		}
		defer tgt.Close()
		client, err := target.NewClient(s.lbURL, target.ClientOptions{Auth: s.creds("tss", nil), Logger: s.log,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxAttempts: 10})
		if err != nil {
			t.Fatal(err)
		}
		p, err := target.NewPuller(target.Config{Store: tgt, State: tgt, Client: client,
			WorkDir: filepath.Join(t.TempDir(), "work"), Logger: s.log})
		if err != nil {
			t.Fatal(err)
		}
		// During the initial pull, A stops at the 2nd file request and a
		// new A' (same database, a new process) starts at the 6th.
		restarted := s.prepare("A'", s.open())
		var launched atomic.Bool
		s.lb.onFile = func(n int64) {
			switch n {
			case 2:
				a.stop()
			case 6:
				restarted.hs.Start()
				restarted.startWorkers()
				s.lb.set(a.addr, restarted.addr)
				launched.Store(true)
			}
		}
		res, err := p.Pull(ctx, replicaPractice)
		s.lb.onFile = nil
		if err != nil {
			t.Fatalf("initial pull through the load balancer: %v", err)
		}
		if !launched.Load() {
			t.Fatalf("the export had %d file requests; the test needs at least 6 to stop and restart a replica", s.lb.files.Load())
		}
		s.sameRecords(t, tgt)
		t.Logf("initial pull: %d resources in %s; responses: A %d, A' %d, B %d",
			res.Counts.Received, res.FinishedAt.Sub(res.StartedAt), s.lb.servedBy(a.addr), s.lb.servedBy(restarted.addr), s.lb.servedBy(b.addr))

		// A delta through both replicas: updates, deletes and a new patient.
		s.change(t)
		res, err = p.Pull(ctx, replicaPractice)
		if err != nil {
			t.Fatalf("delta pull through the load balancer: %v", err)
		}
		s.sameRecords(t, tgt)
		if res.Counts.Received == 0 {
			t.Error("the delta pull received nothing")
		}
		if s.lb.servedBy(restarted.addr) == 0 || s.lb.servedBy(b.addr) == 0 {
			t.Errorf("responses: A' %d, B %d; want both replicas used", s.lb.servedBy(restarted.addr), s.lb.servedBy(b.addr))
		}
	})
}

// change commits 40 updated Observations, 5 deleted Conditions and a new
// patient with an Observation to the shared store.
func (s *replicaSet) change(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	var writes []dtm.Write
	for typ, n := range map[string]int{"Observation": 40, "Condition": 5} {
		err := s.src.Changes(ctx, dtm.ChangeQuery{Practice: replicaPractice, Type: typ}, func(c dtm.Change) error {
			if n == 0 || c.Op == dtm.OpDelete {
				return nil
			}
			n--
			w := dtm.Write{Type: typ, ID: c.ID, Op: dtm.OpDelete, Patient: c.Patient}
			if typ == "Observation" {
				w.Op = dtm.OpUpsert
				w.JSON = bytes.Replace(c.JSON, []byte(`"status":"final"`), []byte(`"status":"amended"`), 1)
				if bytes.Equal(w.JSON, c.JSON) {
					n++
					return nil
				}
			}
			writes = append(writes, w)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	patient := `{"resourceType":"Patient","id":"replica-new","active":true,"gender":"female","birthDate":"1990-02-03"}`
	obs := `{"resourceType":"Observation","id":"replica-new-obs","status":"final","code":{"text":"weight"},"subject":{"reference":"Patient/replica-new"}}`
	writes = append(writes,
		dtm.Write{Type: "Patient", ID: "replica-new", Op: dtm.OpUpsert, JSON: []byte(patient), Patient: "replica-new", Member: true},
		dtm.Write{Type: "Observation", ID: "replica-new-obs", Op: dtm.OpUpsert, JSON: []byte(obs), Patient: "replica-new"})
	c, err := s.src.Apply(ctx, replicaPractice, writes)
	if err != nil || c.Applied != len(writes) {
		t.Fatalf("apply %d changes: %+v, %v", len(writes), c, err)
	}
}

// sameRecords fails unless the target holds exactly the practice's Group
// scope at the source's head: equal digest roots and counts per type.
func (s *replicaSet) sameRecords(t *testing.T, tgt dtm.Journal) {
	t.Helper()
	ctx := t.Context()
	tree := func(j dtm.Journal) reconcile.Tree {
		head, err := j.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := reconcile.ComputeTree(ctx, j, replicaPractice, head)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	src, got := tree(s.src), tree(tgt)
	if src.Digest.Root != got.Digest.Root || !maps.Equal(src.Digest.Counts, got.Digest.Counts) {
		t.Errorf("target differs from source: roots %s / %s, %d / %d resources; counts differ for %v",
			src.Digest.Root, got.Digest.Root, src.Digest.Total, got.Digest.Total,
			reconcile.DifferentCounts(src.Digest.Counts, got.Digest.Counts))
	}
}
