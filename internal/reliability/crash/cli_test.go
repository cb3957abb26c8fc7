package crash_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtm-project/dtm/internal/pgtest"
)

// load returns the command "dtm source load" of in's file into dsn.
func loadCmd(bin, dsn, file string) *exec.Cmd {
	return exec.Command(bin, "source", "load", "--db", dsn, "--practice", odsCode, "--batch", "100", file)
}

// runCLI runs cmd to the end and returns its exit code, stdout and stderr.
func runCLI(tb testing.TB, cmd *exec.Cmd) (code int, stdout, stderr string) {
	tb.Helper()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		tb.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// unchangedRe matches the summary of a load that changed nothing.
var unchangedRe = regexp.MustCompile(`read (\d+), applied 0, unchanged (\d+)`)

// testLoadKilled kills "dtm source load" with SIGKILL at random moments
// and runs it again, many times (with a new store once one is complete):
// after every kill the store holds whole batches only; the last run
// completes the load; one more changes nothing.
func testLoadKilled(t *testing.T, bin string, newDSN func(testing.TB) string) {
	dsn, stores := newDSN(t), 1
	in := practice(t, patients)
	file := in.writeFile(t)
	r := newRand(t)
	start := time.Now()
	if code, _, stderr := runCLI(t, loadCmd(bin, newDSN(t), file)); code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, stderr)
	}
	whole := time.Since(start)
	rounds := trials(3, 40)
	kills, left := 0, 1.0 // left: the share of the input not yet committed
	for range rounds {
		c := startChild(t, loadCmd(bin, dsn, file))
		span := time.Duration(float64(whole) * max(left, 0.2)) // a re-run skips what is held quickly
		select {
		case <-time.After(time.Duration(1 + r.Int64N(int64(span)))):
			c.kill()
		case err := <-c.done:
			c.done <- err // for wait
		}
		if err := c.wait(); err != nil && !c.killed() {
			t.Fatalf("load failed: %v\n%s", err, c.errb)
		}
		if c.killed() {
			kills++
		}
		n := assertWholeBatches(t, dsn, in, 100, 0)
		if left = 1 - float64(n)/float64(len(in.lines)); left == 0 {
			dsn, left = newDSN(t), 1 // complete: go on with a new, empty store
			stores++
		}
	}
	if code, _, stderr := runCLI(t, loadCmd(bin, dsn, file)); code != 0 {
		t.Fatalf("final load: exit %d: %s", code, stderr)
	}
	if n := assertWholeBatches(t, dsn, in, 100, 0); n != len(in.lines) {
		t.Fatalf("after a complete load the store holds %d of %d resources", n, len(in.lines))
	}
	code, stdout, stderr := runCLI(t, loadCmd(bin, dsn, file))
	if m := unchangedRe.FindStringSubmatch(stdout); code != 0 || m == nil || m[2] != strconv.Itoa(len(in.lines)) {
		t.Fatalf("loading again: exit %d, %q %s; want nothing applied", code, stdout, stderr)
	}
	t.Logf("%d runs of dtm source load into %d stores, %d killed (SIGKILL) within a %v load; whole batches only; data lost: 0",
		rounds, stores, kills, whole.Round(time.Millisecond))
}

// testLoadDiskFull loads into a SQLite store on a 1 MiB tmpfs (the
// practice needs several): dtm source load must exit 1 saying the disk is
// full, leave whole batches only, and, once the file system is grown,
// finish the load when run again. It is skipped where mounting is denied.
func testLoadDiskFull(t *testing.T, bin string) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (%v: %s); the in-process SQLITE_FULL test still runs", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	in := practice(t, 20)
	file := in.writeFile(t)
	dsn := "sqlite:" + filepath.Join(mnt, "source.db")
	code, _, stderr := runCLI(t, loadCmd(bin, dsn, file))
	t.Logf("dtm source load on a full disk: exit %d: %s", code, strings.TrimSpace(stderr))
	if code != 1 || !strings.Contains(stderr, "database or disk is full") {
		t.Fatalf("load onto a full disk: exit %d, %q; want exit 1 saying the disk is full", code, stderr)
	}
	n := assertWholeBatches(t, dsn, in, 100, 0)
	if n == 0 || n == len(in.lines) {
		t.Fatalf("the full disk held %d of %d resources: the test did not fill it part-way", n, len(in.lines))
	}
	if out, err := exec.Command("mount", "-o", "remount,size=64m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("grow tmpfs: %v: %s", err, out)
	}
	if code, _, stderr := runCLI(t, loadCmd(bin, dsn, file)); code != 0 {
		t.Fatalf("load after space returned: exit %d: %s", code, stderr)
	}
	if got := assertWholeBatches(t, dsn, in, 100, 0); got != len(in.lines) {
		t.Fatalf("after space returned the store holds %d of %d resources", got, len(in.lines))
	}
	t.Logf("disk filled at %d of %d resources; after space returned the load completed", n, len(in.lines))
}

// testLoadReadOnly runs dtm source load against a store the process may
// not write: a SQLite file and directory without write permission (run as
// "nobody" when the test runs as root, who may write anything), and a
// PostgreSQL database with default_transaction_read_only. It must exit 1
// with the store's reason, and the store must be unchanged.
func testLoadReadOnly(t *testing.T, bin string) {
	in := practice(t, 2)
	file := in.writeFile(t)
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		db := filepath.Join(dir, "source.db")
		dsn := "sqlite:" + db
		if code, _, stderr := runCLI(t, loadCmd(bin, dsn, file)); code != 0 {
			t.Fatalf("load: exit %d: %s", code, stderr)
		}
		before := liveState(t, mustOpen(t, dsn))
		for _, p := range []string{db, dir} {
			if err := os.Chmod(p, map[bool]os.FileMode{true: 0o555, false: 0o444}[p == dir]); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		for _, p := range []string{bin, file, db} {
			searchable(t, filepath.Dir(p))
		}
		cmd := loadCmd(bin, dsn, file)
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		code, _, stderr := runCLI(t, cmd)
		t.Logf("dtm source load into a read-only SQLite store: exit %d: %s", code, strings.TrimSpace(stderr))
		if code != 1 || !strings.Contains(stderr, "readonly database") {
			t.Fatalf("exit %d, %q; want exit 1 saying the database is read-only", code, stderr)
		}
		os.Chmod(dir, 0o755)
		if after := liveState(t, mustOpen(t, dsn)); !equalState(before, after) {
			t.Fatal("the read-only store changed")
		}
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.Start(t)
		if code, _, stderr := runCLI(t, loadCmd(bin, url, file)); code != 0 {
			t.Fatalf("load: exit %d: %s", code, stderr)
		}
		pgExec(t, url, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database()); END $$`)
		code, _, stderr := runCLI(t, loadCmd(bin, url, file))
		t.Logf("dtm source load into a read-only PostgreSQL database: exit %d: %s", code, strings.TrimSpace(stderr))
		if code != 1 || !strings.Contains(stderr, "read-only transaction") {
			t.Fatalf("exit %d, %q; want exit 1 saying the database is read-only", code, stderr)
		}
	})
}

// testLoadDiskFullPostgres runs dtm source load while PostgreSQL runs out
// of space after 2,050 more journal rows (see diskFullAfter): exit 1 with
// PostgreSQL's words, whole batches only, and a complete load once the
// space is back.
func testLoadDiskFullPostgres(t *testing.T, bin string) {
	in := practice(t, 20)
	file := in.writeFile(t)
	url := pgtest.Start(t)
	mustOpen(t, url).Close() // the schema, before the trigger goes on its table
	pgExec(t, url, diskFullAfter(2050))
	code, _, stderr := runCLI(t, loadCmd(bin, url, file))
	t.Logf("dtm source load into a full PostgreSQL: exit %d: %s", code, strings.TrimSpace(stderr))
	if code != 1 || !strings.Contains(stderr, "No space left on device") || !strings.Contains(stderr, "53100") {
		t.Fatalf("exit %d, %q; want exit 1 with PostgreSQL's disk-full error", code, stderr)
	}
	if n := assertWholeBatches(t, url, in, 100, 0); n != 2000 {
		t.Fatalf("the full database holds %d resources, want the 20 whole batches that fitted", n)
	}
	pgExec(t, url, diskFreed)
	if code, _, stderr := runCLI(t, loadCmd(bin, url, file)); code != 0 {
		t.Fatalf("load after space returned: exit %d: %s", code, stderr)
	}
	if n := assertWholeBatches(t, url, in, 100, 0); n != len(in.lines) {
		t.Fatalf("after space returned the store holds %d of %d resources", n, len(in.lines))
	}
}

// searchable lets every user traverse dir's ancestors (test directories
// are private to their owner), for a command run as another user.
func searchable(tb testing.TB, dir string) {
	tb.Helper()
	for d := filepath.Dir(dir); d != "/" && d != "."; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			tb.Fatal(err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, st.Mode().Perm()|0o001); err != nil {
				tb.Fatal(err)
			}
		}
	}
}
