package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/dtm-project/dtm/internal/pgtest"
)

// runBenchJSON runs dtm bench with args and --json and returns the report.
func runBenchJSON(t *testing.T, args ...string) benchReport {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), append(append([]string{"bench"}, args...), "--json", out), nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("dtm bench %v exited %d: %s", args, code, stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", stdout.String())
	return rep
}

// benchMeasures are the measures of one practice size with --changes 100.
var benchMeasures = []string{
	"generate", "source ingest (%s)", "full export, kick-off to last byte",
	"full export, kick-off to last byte (gzip)", "delta export of 100 changes, manifest ready",
	"delta export of 100 changes, to last byte", "change in source → available, p99",
	"target pull + validate + load", "reconcile, first (source and target digests)",
	"cutover: freeze → final pull → reconcile → go/no-go", "peak memory, any stage (RSS)",
}

// checkMeasures fails t unless results hold exactly benchMeasures (with
// the source store's kind) for each size, each a positive figure beside a
// budget, with its size and memory.
func checkMeasures(t *testing.T, results []benchResult, kind string, sizes ...int) {
	t.Helper()
	want := map[string]bool{}
	for _, n := range sizes {
		for _, m := range benchMeasures {
			if strings.Contains(m, "%s") {
				m = fmt.Sprintf(m, kind)
			}
			want[fmt.Sprintf("%d|%s", n, m)] = false
		}
	}
	for _, r := range results {
		key := fmt.Sprintf("%d|%s", r.Patients, r.Name)
		if _, ok := want[key]; !ok {
			t.Errorf("unexpected measure %q", key)
		}
		want[key] = true
		if r.Value <= 0 || r.Budget == "" || r.PeakMiB <= 0 {
			t.Errorf("%s: value %v budget %q heap %v MiB; want a positive figure beside its budget, and memory", key, r.Value, r.Budget, r.PeakMiB)
		}
		if runtime.GOOS == "linux" && r.PeakRSS <= 0 {
			t.Errorf("%s: no peak RSS", key)
		}
	}
	for key, seen := range want {
		if !seen {
			t.Errorf("no figure for %q", key)
		}
	}
}

func TestBench_Quick(t *testing.T) {
	if testing.Short() {
		t.Skip("dtm bench --quick takes a while; skipped with -short")
	}
	rep := runBenchJSON(t, "--quick")
	checkMeasures(t, rep.Results, "SQLite", 100)
	if rep.LoadStart == "" && runtime.GOOS == "linux" {
		t.Error("no load average in the report")
	}
	for _, r := range rep.Results {
		if r.Stores != "SQLite → SQLite" {
			t.Errorf("%s: stores %q; want SQLite → SQLite", r.Name, r.Stores)
		}
	}
}

// TestBench_PostgresGrowth runs every stage on PostgreSQL (source and
// target) for two tiny practice sizes, and checks the growth table holds
// each measure at both sizes.
func TestBench_PostgresGrowth(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("dtm bench on PostgreSQL takes a while; skipped with -short and under -race (TestBench_Quick runs the stages under it)")
	}
	rep := runBenchJSON(t, "--quick", "--sizes", "5,10", "--db", pgtest.Start(t))
	checkMeasures(t, rep.Results, "PostgreSQL", 5, 10)
	if len(rep.Growth) != len(benchMeasures) {
		t.Fatalf("growth has %d rows; want %d", len(rep.Growth), len(benchMeasures))
	}
	for _, g := range rep.Growth {
		if g.Stores != "PostgreSQL → PostgreSQL" || len(g.Values) != 2 || g.Values[5] <= 0 || g.Values[10] <= 0 {
			t.Errorf("growth row %+v; want PostgreSQL → PostgreSQL at 5 and 10 patients", g)
		}
	}
}

// TestBench_DeltaChanges checks the delta stage on a source alone: each
// --changes count is exported exactly (the stage fails otherwise), largest
// first, and a count above the practice's size updates every resource.
func TestBench_DeltaChanges(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("dtm bench takes a while; skipped with -short and under -race (TestBench_Quick runs the stages under it)")
	}
	rep := runBenchJSON(t, "--quick", "--source-only", "--patients", "3", "--changes", "10,100000")
	var names []string
	for _, r := range rep.Results {
		names = append(names, r.Name)
		if r.Stores != "SQLite source" {
			t.Errorf("%s: stores %q; want SQLite source", r.Name, r.Stores)
		}
	}
	want := []string{"generate", "source ingest (SQLite)", "full export, kick-off to last byte", "full export, kick-off to last byte (gzip)",
		"delta export of 100000 changes, manifest ready", "delta export of 100000 changes, to last byte",
		"delta export of 10 changes, manifest ready", "delta export of 10 changes, to last byte",
		"change in source → available, p99", "peak memory, any stage (RSS)"}
	if !slices.Equal(names, want) {
		t.Errorf("measures %q; want %q", names, want)
	}
	for _, r := range rep.Results {
		if r.Name == "delta export of 100000 changes, manifest ready" && !strings.Contains(r.Note, "fewer than 100000") {
			t.Errorf("%s: note %q; want it to say the practice has fewer resources", r.Name, r.Note)
		}
	}
}

// TestBench_Practices runs the many-practices stage on a few tiny
// practices: on SQLite, and on PostgreSQL served by two replicas behind the
// bench's round-robin proxy. The stage itself fails unless every target
// ends equal to its practice at the source.
func TestBench_Practices(t *testing.T) {
	if testing.Short() {
		t.Skip("dtm bench --practices takes a while; skipped with -short")
	}
	for name, extra := range map[string][]string{
		"SQLite":              nil,
		"PostgreSQL2Replicas": {"--practices-db", "", "--practices-replicas", "2"},
	} {
		t.Run(name, func(t *testing.T) {
			if extra != nil {
				extra[1] = pgtest.Start(t)
			}
			results := runBenchJSON(t, append([]string{"--practices", "3", "--practice-patients", "4", "--practices-only"}, extra...)...).Results
			var names []string
			for _, r := range results {
				names = append(names, r.Name)
				if r.Value <= 0 {
					t.Errorf("%s: value %v; want a positive figure", r.Name, r.Value)
				}
			}
			want := []string{"3 practices: source ingest", "3 practices to 3 targets at once: total",
				"3 practices to 3 targets at once: per-pull p50", "3 practices to 3 targets at once: per-pull p99"}
			if got := strings.Join(names, "|"); len(results) != len(want) || !strings.HasPrefix(got, want[0]) || !strings.HasSuffix(got, strings.Join(want[1:], "|")) {
				t.Errorf("measures %q; want %q", names, want)
			}
		})
	}
}
