package crash_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/internal/pgtest"
	"github.com/dtm-project/dtm/store"
	"github.com/dtm-project/dtm/synth"
)

// odsCode is the practice every test migrates.
const odsCode = "A81001"

// envLong selects the long mode: many trials per case.
const envLong = "DTM_RELIABILITY_LONG"

// envSeed fixes the random seed, to replay a failure.
const envSeed = "DTM_CRASH_SEED"

// envChild names the child role a re-executed test binary plays.
const envChild = "DTM_CRASH_CHILD"

// TestMain runs a child role when asked to and otherwise the tests, then
// stops the PostgreSQL cluster pgtest may have started.
func TestMain(m *testing.M) {
	if role := os.Getenv(envChild); role != "" {
		os.Exit(runChild(role))
	}
	pgtest.Main(m)
}

// trials returns fast in the default mode and long with DTM_RELIABILITY_LONG.
func trials(fast, long int) int {
	if os.Getenv(envLong) != "" {
		return long
	}
	return fast
}

// newRand returns a logged, seeded source of randomness for kill points.
func newRand(tb testing.TB) *rand.Rand {
	tb.Helper()
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv(envSeed), 10, 64); err == nil {
		seed = s
	}
	tb.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 10))
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// storeKinds are the two store implementations every crash test covers.
var storeKinds = []struct {
	name string
	dsn  func(tb testing.TB) string // a new, empty store
}{
	{"sqlite", func(tb testing.TB) string { return "sqlite:" + filepath.Join(tb.TempDir(), "source.db") }},
	{"postgres", func(tb testing.TB) string { return pgtest.Start(tb) }},
}

// mustOpen opens the store named by dsn, closed when tb ends.
func mustOpen(tb testing.TB, dsn string) dtm.Store {
	tb.Helper()
	st, err := store.Open(context.Background(), dsn, dtm.SystemClock{}, quietLogger())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// input is a generated practice as NDJSON lines, in file order.
type input struct {
	lines [][]byte
	keys  []string          // "Type/id" of each line
	hash  map[string]string // "Type/id" → content hash
}

var (
	inputsMu sync.Mutex
	inputs   = map[int]*input{}
)

// practice returns the generated practice of n patients (seed 7), the same
// for every call.
func practice(tb testing.TB, patients int) *input {
	tb.Helper()
	inputsMu.Lock()
	defer inputsMu.Unlock()
	if in, ok := inputs[patients]; ok {
		return in
	}
	in := &input{hash: map[string]string{}}
	err := synth.Generate(context.Background(), synth.Options{Practice: odsCode, Patients: patients, Seed: 7},
		func(_ string, b []byte) error {
			h, err := fhir.ParseHeader(b)
			if err != nil {
				return err
			}
			hash, err := fhir.ContentHash(b)
			if err != nil {
				return err
			}
			key := h.ResourceType + "/" + h.ID
			if _, dup := in.hash[key]; dup {
				tb.Fatalf("generated practice repeats %s", key)
			}
			in.lines = append(in.lines, bytes.Clone(b))
			in.keys = append(in.keys, key)
			in.hash[key] = hash
			return nil
		})
	if err != nil {
		tb.Fatal(err)
	}
	inputs[patients] = in
	return in
}

// writeFile writes the practice as one NDJSON file and returns its path.
func (in *input) writeFile(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "practice.ndjson")
	var buf bytes.Buffer
	for _, l := range in.lines {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// version is one resource's current state in a journal.
type version struct {
	Hash    string
	Version int64
	Op      dtm.Op
}

// liveState returns every resource of the practice at the journal's head,
// deleted ones included, keyed "Type/id".
func liveState(tb testing.TB, j dtm.Journal) map[string]version {
	tb.Helper()
	ctx := context.Background()
	head, err := j.Head(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]version{}
	err = j.Changes(ctx, dtm.ChangeQuery{Practice: odsCode, Until: head.Seq}, func(c dtm.Change) error {
		key := c.Type + "/" + c.ID
		if _, dup := out[key]; dup {
			tb.Errorf("Changes reports %s twice", key)
		}
		out[key] = version{Hash: c.Hash, Version: c.Version, Op: c.Op}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// child is a process the test may kill. Its stdout is read line by line.
type child struct {
	cmd   *exec.Cmd
	lines chan string // stdout lines; closed at EOF
	errb  *bytes.Buffer
	done  chan error // the Wait result, once
	err   error
	ended bool
}

// startChild starts cmd, reading its stdout into lines.
func startChild(tb testing.TB, cmd *exec.Cmd) *child {
	tb.Helper()
	c := &child{cmd: cmd, lines: make(chan string, 1<<16), errb: new(bytes.Buffer), done: make(chan error, 1)}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{w: c.errb}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		io.Copy(io.Discard, out)
		close(c.lines)
		c.done <- cmd.Wait()
	}()
	tb.Cleanup(func() {
		c.kill()
		c.wait()
	})
	return c
}

// kill sends SIGKILL unless the process has ended; the caller then reads
// the rest of lines and calls wait.
func (c *child) kill() {
	if !c.ended {
		c.cmd.Process.Kill()
	}
}

// wait drains stdout and waits for the process; it returns its exit error.
func (c *child) wait() error {
	if !c.ended {
		for range c.lines {
		}
		c.err = <-c.done
		c.ended = true
	}
	return c.err
}

// killed reports whether the ended process died of SIGKILL.
func (c *child) killed() bool {
	var ee *exec.ExitError
	if !errors.As(c.err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// lockedWriter serialises writes into a buffer shared with the reader.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// testBinary returns a command running this test binary as a child role.
func testBinary(role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envChild+"="+role), env...)
	return cmd
}

// buildDTM builds cmd/dtm into a new directory of tb's (readable by every
// user: the read-only test runs it as another one) and returns its path.
func buildDTM(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "dtm")
	if runtime.GOOS == "windows" {
		path += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", path, "github.com/dtm-project/dtm/cmd/dtm")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build dtm: %v\n%s", err, out)
	}
	return path
}
