package crash_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/store"
)

// Environment of the "ingest" child.
const (
	envDSN   = "DTM_CRASH_DSN"
	envFile  = "DTM_CRASH_FILE"
	envBatch = "DTM_CRASH_BATCH"
)

// runChild plays a child role and returns the process exit code.
func runChild(role string) int {
	var err error
	switch role {
	case "ingest":
		err = childIngest(context.Background())
	default:
		err = fmt.Errorf("unknown child role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childIngest loads one NDJSON file with the Ingester, printing
// "committed N" on stdout as soon as each batch of N writes has been
// committed (stdout is unbuffered: once printed, the parent will read it),
// and "done applied=A skipped=S" at the end.
func childIngest(ctx context.Context) error {
	batch, err := strconv.Atoi(os.Getenv(envBatch))
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, os.Getenv(envDSN), dtm.SystemClock{}, quietLogger())
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.CreatePractice(ctx, dtm.Practice{ODS: odsCode, Name: "Crash Surgery"}); err != nil {
		return err
	}
	in := &source.Ingester{Journal: reportingJournal{st}, Logger: quietLogger(), BatchSize: batch}
	stats, err := in.LoadPaths(ctx, odsCode, []string{os.Getenv(envFile)})
	if err != nil {
		return err
	}
	fmt.Printf("done applied=%d skipped=%d\n", stats.Applied, stats.Skipped)
	return nil
}

// reportingJournal reports each committed batch on stdout.
type reportingJournal struct{ dtm.Journal }

func (j reportingJournal) Apply(ctx context.Context, practice string, writes []dtm.Write) (dtm.Commit, error) {
	c, err := j.Journal.Apply(ctx, practice, writes)
	if err == nil {
		fmt.Printf("committed %d\n", len(writes))
	}
	return c, err
}

// TestIngester_Crash kills an ingest (the Ingester in a child process,
// writing NDJSON in batches) with SIGKILL at random points — just after a
// batch was reported committed, or part-way into the next — and re-runs it
// into the same store, many times. After every kill the store must hold
// exactly a whole number of batches, in input order, including every batch
// reported committed, each resource once (version 1) with its exact
// content; the final run completes the load, and a further run changes
// nothing.
func TestIngester_Crash(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			const batch = 100
			in := practice(t, patients)
			file, dsn := in.writeFile(t), kind.dsn(t)
			r := newRand(t)
			nb := (len(in.lines) + batch - 1) / batch
			rounds := trials(4, 60)
			kills := 0
			run := func(k int) (reported int, done string, killed bool) {
				c := startChild(t, testBinary("ingest", envDSN+"="+dsn, envFile+"="+file, envBatch+"="+strconv.Itoa(batch)))
				start := time.Now()
				var killAt <-chan time.Time
				for open := true; open; {
					select {
					case line, ok := <-c.lines:
						switch {
						case !ok:
							open = false
						case strings.HasPrefix(line, "committed "):
							reported++
							if reported == k { // kill within about one batch time from now
								avg := time.Since(start) / time.Duration(k)
								killAt = time.After(time.Duration(r.Int64N(int64(avg) + 1)))
							}
						case strings.HasPrefix(line, "done "):
							done = line
						}
					case <-killAt:
						c.kill()
						killAt = nil
					}
				}
				err := c.wait()
				if err != nil && !c.killed() {
					t.Fatalf("ingest child failed: %v\n%s", err, c.errb)
				}
				return reported, done, c.killed()
			}
			for range rounds {
				reported, _, killed := run(1 + r.IntN(nb-1))
				if killed {
					kills++
				}
				assertWholeBatches(t, dsn, in, batch, reported)
			}
			if _, done, _ := run(0); done == "" {
				t.Fatal("the final ingest did not finish")
			}
			n := assertWholeBatches(t, dsn, in, batch, nb)
			if n != len(in.lines) {
				t.Fatalf("after a complete run the store holds %d of %d resources", n, len(in.lines))
			}
			st := mustOpen(t, dsn)
			before, err := st.Head(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, done, _ := run(0); done != fmt.Sprintf("done applied=0 skipped=%d", len(in.lines)) {
				t.Fatalf("re-running a complete ingest: %q, want nothing applied", done)
			}
			if after, err := st.Head(context.Background()); err != nil || after != before {
				t.Fatalf("re-running a complete ingest moved the head from %+v to %+v (%v)", before, after, err)
			}
			t.Logf("%d trials, %d killed (SIGKILL) mid-ingest, %d resources in %d batches of %d; data lost: 0",
				rounds, kills, len(in.lines), nb, batch)
		})
	}
}

// assertWholeBatches checks the store after an ingest of in (in batches of
// batch) was killed having reported `reported` batches committed: it must
// hold exactly the first n inputs, n a whole number of batches (or all of
// them) and at least the reported ones, each at version 1 with the input's
// content. It returns n.
func assertWholeBatches(tb testing.TB, dsn string, in *input, batch, reported int) int {
	tb.Helper()
	st := mustOpen(tb, dsn)
	defer st.Close()
	got := liveState(tb, st)
	n := len(got)
	if n%batch != 0 && n != len(in.lines) {
		tb.Fatalf("store holds %d resources: not a whole number of batches of %d (a batch was half applied)", n, batch)
	}
	if want := min(reported*batch, len(in.lines)); n < want {
		tb.Fatalf("store holds %d resources, but %d batches (%d resources) were reported committed", n, reported, want)
	}
	for _, key := range in.keys[:n] {
		v, ok := got[key]
		switch {
		case !ok:
			tb.Fatalf("store holds %d resources but not %s, which is among the first %d inputs", n, key, n)
		case v.Op != dtm.OpUpsert || v.Version != 1:
			tb.Fatalf("%s: op %v version %d, want one upsert (written twice?)", key, v.Op, v.Version)
		case v.Hash != in.hash[key]:
			tb.Fatalf("%s: content hash differs from the input", key)
		}
	}
	return n
}
