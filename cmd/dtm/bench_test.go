package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dtm-project/dtm/internal/pgtest"
)

func TestBench_Quick(t *testing.T) {
	if testing.Short() {
		t.Skip("dtm bench --quick takes a while; skipped with -short")
	}
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), []string{"bench", "--quick", "--json", out}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("dtm bench --quick exited %d: %s", code, stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var results []benchResult
	if err := json.Unmarshal(data, &results); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"generate": false, "source ingest (SQLite)": false, "full export, kick-off to last byte": false,
		"full export, kick-off to last byte (gzip)": false, "delta export of 100 changes, manifest ready": false,
		"change in source → available, p99": false, "target pull + validate + load": false,
	}
	for _, r := range results {
		if _, ok := want[r.Name]; !ok {
			t.Errorf("unexpected measure %q", r.Name)
		}
		want[r.Name] = true
		if r.Value <= 0 || r.Budget == "" {
			t.Errorf("%s: value %v budget %q; want a positive figure beside its budget", r.Name, r.Value, r.Budget)
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("no figure for %q", name)
		}
	}
	t.Logf("\n%s", stdout.String())
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
			out := filepath.Join(t.TempDir(), "bench.json")
			args := append([]string{"bench", "--practices", "3", "--practice-patients", "4", "--practices-only", "--json", out}, extra...)
			var stdout, stderr bytes.Buffer
			if code := Run(context.Background(), args, nil, &stdout, &stderr); code != exitOK {
				t.Fatalf("dtm bench --practices exited %d: %s", code, stderr.String())
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var results []benchResult
			if err := json.Unmarshal(data, &results); err != nil {
				t.Fatal(err)
			}
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
			t.Logf("\n%s", stdout.String())
		})
	}
}
