package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
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
