package crash_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/target"
)

// sourceProc is a "dtm source serve --auth none" process on a fixed
// loopback address, so that it can be killed and restarted where the
// target expects it.
type sourceProc struct {
	tb       testing.TB
	bin, dsn string
	addr     string
	c        *child
	starts   int
}

// newSourceProc picks a free loopback port for a source serving dsn.
func newSourceProc(tb testing.TB, bin, dsn string) *sourceProc {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return &sourceProc{tb: tb, bin: bin, dsn: dsn, addr: addr}
}

func (s *sourceProc) url() string { return "http://" + s.addr }

// start starts the source and waits until /healthz answers.
func (s *sourceProc) start() {
	s.tb.Helper()
	s.c = startChild(s.tb, exec.Command(s.bin, "source", "serve", "--db", s.dsn, "--addr", s.addr, "--auth", "none"))
	s.starts++
	for range 1500 {
		if resp, err := http.Get(s.url() + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-s.c.done:
			s.c.ended, s.c.err = true, err
			s.tb.Fatalf("source serve exited: %v\n%s", err, s.c.errb)
		case <-time.After(10 * time.Millisecond):
		}
	}
	s.tb.Fatalf("source serve did not become healthy\n%s", s.c.errb)
}

// kill kills the source with SIGKILL and waits for it to die.
func (s *sourceProc) kill() {
	s.c.kill()
	s.c.wait()
}

// loadSource registers the practice in st and ingests in into it.
func loadSource(tb testing.TB, st dtm.Store, in *input) {
	tb.Helper()
	ctx := context.Background()
	if _, err := st.CreatePractice(ctx, dtm.Practice{ODS: odsCode, Name: "Crash Surgery"}); err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	for _, l := range in.lines {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	ing := &source.Ingester{Journal: st, Logger: quietLogger()}
	if _, err := ing.Load(ctx, odsCode, "practice.ndjson", source.FormatNDJSON, &buf); err != nil {
		tb.Fatal(err)
	}
}

// changeSource updates n random live non-Patient resources and deletes a
// tenth as many, in one batch.
func changeSource(tb testing.TB, st dtm.Store, r *rand.Rand, in *input, n int, tag string) {
	tb.Helper()
	ctx := context.Background()
	var writes []dtm.Write
	seen := map[string]bool{}
	for len(writes) < n+n/10 {
		key := in.keys[r.IntN(len(in.keys))]
		typ, id, _ := cutKey(key)
		if typ == "Patient" || seen[key] {
			continue
		}
		seen[key] = true
		cur, err := st.Get(ctx, odsCode, typ, id)
		if dtm.ErrorCode(err) == dtm.ENotFound {
			continue // deleted earlier
		} else if err != nil {
			tb.Fatal(err)
		}
		if len(writes) >= n {
			writes = append(writes, dtm.Write{Type: typ, ID: id, Op: dtm.OpDelete, Patient: cur.Patient})
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(cur.JSON, &m); err != nil {
			tb.Fatal(err)
		}
		m["implicitRules"], _ = json.Marshal("https://example.org/rules/" + tag)
		b, err := json.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		w, err := source.ResourceWrite(b)
		if err != nil {
			tb.Fatal(err)
		}
		writes = append(writes, w)
	}
	if _, err := st.Apply(ctx, odsCode, writes); err != nil {
		tb.Fatal(err)
	}
}

func cutKey(key string) (typ, id string, ok bool) {
	i := bytes.IndexByte([]byte(key), '/')
	if i < 0 {
		return key, "", false
	}
	return key[:i], key[i+1:], true
}

// targetSide is a target store with a puller and a client for one source.
type targetSide struct {
	path   string
	db     *sqlite.DB
	client *target.Client
	puller *target.Puller
}

// newTarget opens a new target store pulling from srcURL. The client
// retries a request a few times with short backoff, so that a source
// restart is sometimes bridged by retries and sometimes fails the pull.
func newTarget(tb testing.TB, srcURL string) *targetSide {
	tb.Helper()
	dir := tb.TempDir()
	ts := &targetSide{path: dir + "/target.db"}
	var err error
	ts.db, err = sqlite.Open(context.Background(), ts.path, sqlite.Options{Logger: quietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ts.db.Close() })
	ts.client, err = target.NewClient(srcURL, target.ClientOptions{Logger: quietLogger(), MaxAttempts: 5,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	ts.puller, err = target.NewPuller(target.Config{Store: ts.db, State: ts.db, Client: ts.client,
		WorkDir: dir + "/work", Logger: quietLogger(), BatchSize: 500})
	if err != nil {
		tb.Fatal(err)
	}
	return ts
}

// assertMigrated checks that the target holds exactly the source's live
// resources of the practice's members (same type/id, content hash and
// version; no extra, none missing), that target.Reconcile reports a match,
// and that no version was applied twice.
func assertMigrated(tb testing.TB, src dtm.Store, ts *targetSide) {
	tb.Helper()
	ctx := context.Background()
	want, got := liveResources(tb, src), liveResources(tb, ts.db)
	var missing, differ, extra []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			missing = append(missing, k)
		} else if g != w {
			differ = append(differ, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(differ)+len(extra) > 0 {
		slices.Sort(missing)
		slices.Sort(differ)
		slices.Sort(extra)
		tb.Fatalf("target differs from source (%d resources): missing %d %.5q, differ %d %.5q, extra %d %.5q",
			len(want), len(missing), missing, len(differ), differ, len(extra), extra)
	}
	rep, err := target.Reconcile(ctx, ts.client, ts.db, odsCode, target.ReconcileOptions{State: ts.db})
	if err != nil {
		tb.Fatal(err)
	}
	if rep.Result != target.ReconcileMatch {
		b, _ := json.MarshalIndent(rep, "", " ")
		tb.Fatalf("reconcile: %s, counts differ %v, %d buckets differ\n%.3000s", rep.Result, rep.CountsDiffer, len(rep.DifferentBuckets), b)
	}
	assertNoDuplicates(tb, ts.path)
}

// liveResources returns the live resources of the practice's members
// (resources in a non-member patient's compartment are not exported),
// keyed "Type/id", as "hash@version".
func liveResources(tb testing.TB, j dtm.Journal) map[string]string {
	tb.Helper()
	ctx := context.Background()
	head, err := j.Head(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	member := map[string]bool{}
	out := map[string]string{}
	patient := map[string]string{}
	err = j.Changes(ctx, dtm.ChangeQuery{Practice: odsCode, Until: head.Seq}, func(c dtm.Change) error {
		if c.Op != dtm.OpUpsert {
			return nil
		}
		key := c.Type + "/" + c.ID
		if c.Type == "Patient" {
			member[c.ID] = c.Member
		}
		out[key] = fmt.Sprintf("%s@%d", c.Hash, c.Version)
		patient[key] = c.Patient
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	for key, p := range patient {
		if typ, _, _ := cutKey(key); typ != "Patient" && p != "" {
			if m, ok := member[p]; ok && !m {
				delete(out, key)
			}
		}
	}
	return out
}

// assertNoDuplicates checks that no (resource, version) was applied twice
// to the target journal at path.
func assertNoDuplicates(tb testing.TB, path string) {
	tb.Helper()
	db, err := sql.Open("sqlite", path+"?_query_only=on")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var dups int
	if err := db.QueryRow(`SELECT count(*) FROM (SELECT 1 FROM journal WHERE op = ?
		GROUP BY practice, type, id, version HAVING count(*) > 1)`, dtm.OpUpsert).Scan(&dups); err != nil {
		tb.Fatal(err)
	}
	if dups > 0 {
		tb.Fatalf("%d resource versions applied more than once", dups)
	}
}
