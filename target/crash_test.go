package target_test

import (
	"bytes"
	"context"
	"database/sql"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

// Environment of the crash test's child process.
const (
	envCrashChild  = "DTM_TARGET_CRASH_CHILD"
	envCrashSource = "DTM_TARGET_CRASH_SOURCE"
	envCrashDB     = "DTM_TARGET_CRASH_DB"
	envCrashWork   = "DTM_TARGET_CRASH_WORK"
)

// TestPuller_CrashChild is the child of TestPuller_Crash: one pull, in its
// own process, so that the parent can SIGKILL it at any moment.
func TestPuller_CrashChild(t *testing.T) {
	if os.Getenv(envCrashChild) == "" {
		t.Skip("run by TestPuller_Crash")
	}
	db := mustOpen(t, os.Getenv(envCrashDB))
	p := pullerFor(t, os.Getenv(envCrashSource), db, os.Getenv(envCrashWork), false)
	if _, err := p.Pull(t.Context(), testODS); err != nil {
		t.Fatal(err)
	}
}

// TestPuller_Crash kills pulls with SIGKILL at random moments while the
// source keeps changing, then lets one finish: the target must end equal
// to the source, with no version applied twice (invariant 4).
func TestPuller_Crash(t *testing.T) {
	t.Parallel()
	src := mustSource(t, map[bool]int{false: 6, true: 3}[raceEnabled])
	dir := t.TempDir()
	dbPath, work := filepath.Join(dir, "target.db"), filepath.Join(dir, "work")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	rounds := 10
	switch {
	case os.Getenv("DTM_RELIABILITY_LONG") != "": // the long mode of docs/RELIABILITY.md
		rounds = 100
	case testing.Short():
		rounds = 4
	}
	child := func(kill time.Duration) (killed bool, out []byte) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPuller_CrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashSource+"="+src.url, envCrashDB+"="+dbPath, envCrashWork+"="+work)
		if kill < 0 { // a dry run into a throwaway target, to time a whole pull
			cmd.Env = append(cmd.Env, envCrashDB+"="+filepath.Join(dir, "dry.db"))
			kill = 0
		}
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		if kill > 0 {
			select {
			case err = <-done:
			case <-time.After(kill):
				cmd.Process.Kill()
				<-done
				return true, buf.Bytes()
			}
		} else {
			err = <-done
		}
		if err != nil {
			t.Fatalf("child pull failed: %v\n%s", err, buf.Bytes())
		}
		return false, buf.Bytes()
	}
	start := time.Now()
	child(-1)
	whole := time.Since(start)
	kills := 0
	for i := range rounds {
		if i%3 == 1 {
			src.change(t, 3, 1, 1)
		}
		if killed, _ := child(time.Duration(1 + r.Int64N(int64(whole)))); killed {
			kills++
		}
	}
	child(0) // finishes the export the last kill interrupted
	child(0) // and catches up with the changes made since
	t.Logf("%d of %d pulls killed at random within %v", kills, rounds, whole)
	tgt := mustOpen(t, dbPath)
	if t.Failed() {
		return
	}
	pulls, _ := tgt.Pulls(context.Background(), testODS, 100)
	for _, p := range pulls {
		t.Logf("pull %s %s since %s tt %s counts %+v", p.ID, p.Status, p.Since.Format(time.RFC3339Nano),
			p.TransactionTime.Format(time.RFC3339Nano), p.Counts)
	}
	assertMigrated(t, src.db, tgt)
	assertNoDuplicates(t, dbPath)
	if _, ok, err := tgt.ActivePull(context.Background(), src.url, testODS); ok || err != nil {
		t.Fatalf("a pull is still unfinished after a complete run: %v", err)
	}
}

// assertNoDuplicates checks that no (resource, version) was applied twice
// to the target journal.
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
