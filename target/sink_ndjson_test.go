package target_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/target"
)

// replayNDJSON reads an NDJSON sink's batches of the test practice the way
// an importer would (directories in name order, skipping those starting
// with "."), checking each file against the manifest and that no resource
// appears twice in a batch. It returns the resulting resources and the
// batches' manifests.
func replayNDJSON(tb testing.TB, dir string) (map[string][]byte, []target.NDJSONManifest) {
	tb.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, testODS))
	if err != nil {
		tb.Fatal(err)
	}
	state := map[string][]byte{}
	var manifests []target.NDJSONManifest
	for _, e := range entries { // ReadDir sorts by name
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		batch := filepath.Join(dir, testODS, e.Name())
		var m target.NDJSONManifest
		b, err := os.ReadFile(filepath.Join(batch, "manifest.json"))
		if err != nil || json.Unmarshal(b, &m) != nil || m.Format != target.SinkNDJSONFormat || m.Practice != testODS {
			tb.Fatalf("batch %s: manifest %s, %v", e.Name(), b, err)
		}
		seen := map[string]bool{}
		files := slices.Clone(m.Output)
		if m.Deleted != nil {
			files = append(files, *m.Deleted)
		}
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(batch, f.File))
			if err != nil {
				tb.Fatal(err)
			}
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != f.SHA256 || int64(bytes.Count(data, []byte("\n"))) != f.Count {
				tb.Fatalf("batch %s file %s does not match its manifest", e.Name(), f.File)
			}
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(nil, 64<<20)
			for sc.Scan() {
				line := slices.Clone(sc.Bytes())
				h, err := fhir.ParseHeader(line)
				if err != nil {
					tb.Fatalf("batch %s file %s: %v", e.Name(), f.File, err)
				}
				key := h.ResourceType + "/" + h.ID
				if seen[key] {
					tb.Fatalf("batch %s holds %s twice", e.Name(), key)
				}
				seen[key] = true
				if f.Type == "" {
					delete(state, key)
				} else {
					state[key] = line
				}
			}
		}
		manifests = append(manifests, m)
	}
	return state, manifests
}

// partials lists the sink's unfinished batch directories.
func partials(tb testing.TB, dir string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, testODS, ".partial-*"))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// TestNDJSONSink_Pull stages an initial extract and a delta with deletes:
// replaying the batches gives the target store's state, which is the
// source's. A delivery that fails half way leaves only a .partial-
// directory and the checkpoint where it was; one that succeeded before a
// later sink failed is not written again when the pull resumes, so no
// batch is duplicated or half written.
func TestNDJSONSink_Pull(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := mustSource(t, map[bool]int{false: 6, true: 3}[raceEnabled])
	tgt := mustOpen(t, filepath.Join(t.TempDir(), "target.db"))
	work, dir := t.TempDir(), filepath.Join(t.TempDir(), "staging")
	sink, err := target.NewNDJSONSink(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, err := sinkPuller(t, src.url, tgt, work, false, sink).Pull(ctx, testODS)
	if err != nil {
		t.Fatal(err)
	}
	assertMigrated(t, src.db, tgt)
	state, ms := replayNDJSON(t, dir)
	assertSinkEqual(t, "ndjson", state, tgt)
	if len(ms) != 1 || ms[0].Pull != first.ID || ms[0].Since != "" || ms[0].Deleted != nil {
		t.Fatalf("manifests after the initial extract: %+v", ms)
	}

	src.change(t, 10, 5, 2)
	t.Run("ErrHalfWritten", func(t *testing.T) {
		sink.FailAfterForTest(7)
		defer sink.FailAfterForTest(0)
		if _, err := sinkPuller(t, src.url, tgt, work, false, sink).Pull(ctx, testODS); err == nil {
			t.Fatal("pull succeeded though its sink failed")
		}
		if _, ms := replayNDJSON(t, dir); len(ms) != 1 || len(partials(t, dir)) != 1 {
			t.Fatalf("%d batches, partial %v", len(ms), partials(t, dir))
		}
		if cp := checkpoint(t, tgt, src.url); !cp.Equal(first.TransactionTime) {
			t.Fatalf("checkpoint moved to %v on a sink failure", cp)
		}
	})
	t.Run("ErrLaterSink", func(t *testing.T) {
		srv := startFHIRServer(t)
		srv.set(func(s *fhirServer) { s.fail, s.failStatus = 1000, 500 })
		fs := mustFHIRSink(t, srv.url, target.FHIRSinkOptions{MaxAttempts: 2})
		if _, err := sinkPuller(t, src.url, tgt, work, false, sink, fs).Pull(ctx, testODS); err == nil {
			t.Fatal("pull succeeded though a sink failed")
		}
		if cp := checkpoint(t, tgt, src.url); !cp.Equal(first.TransactionTime) {
			t.Fatalf("checkpoint moved to %v on a sink failure", cp)
		}
		if _, ms := replayNDJSON(t, dir); len(ms) != 2 || len(partials(t, dir)) != 0 {
			t.Fatalf("%d batches, partial %v", len(ms), partials(t, dir))
		}
	})
	// An importer's mark in the delivered batch survives only if the
	// resumed pull leaves the batch alone.
	_, ms = replayNDJSON(t, dir)
	mark := filepath.Join(dir, batchDir(t, ms[1]), ".imported")
	if err := os.WriteFile(mark, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	second, err := sinkPuller(t, src.url, tgt, work, false, sink).Pull(ctx, testODS)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Resumed || second.Counts.Deleted != 5 {
		t.Fatalf("second pull %+v", second)
	}
	if cp := checkpoint(t, tgt, src.url); !cp.Equal(second.TransactionTime) {
		t.Fatalf("checkpoint %v, want %v", cp, second.TransactionTime)
	}
	assertMigrated(t, src.db, tgt)
	state, ms = replayNDJSON(t, dir)
	assertSinkEqual(t, "ndjson", state, tgt)
	if len(ms) != 2 || ms[1].Pull != second.ID || ms[1].Since == "" ||
		ms[1].Deleted == nil || ms[1].Deleted.Count != 5 {
		t.Fatalf("manifests after the delta: %+v", ms)
	}
	var n int64
	for _, f := range ms[1].Output {
		n += f.Count
	}
	if n+ms[1].Deleted.Count != second.Counts.Applied {
		t.Fatalf("delta batch holds %d resources and %d deletes, the pull applied %d", n, ms[1].Deleted.Count, second.Counts.Applied)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatalf("the batch delivered before the failure was written again: %v", err)
	}
}

// batchDir returns the directory of a batch, relative to the sink's.
func batchDir(tb testing.TB, m target.NDJSONManifest) string {
	tb.Helper()
	tt, err := time.Parse(time.RFC3339Nano, m.TransactionTime)
	if err != nil {
		tb.Fatal(err)
	}
	return target.BatchDir(&target.Batch{ID: m.Pull, Practice: m.Practice, TransactionTime: tt})
}
