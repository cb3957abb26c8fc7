package ukcore

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sharedData is the project's shared test data directory (absent in a
// user's clone).
const sharedData = "../../shared/data"

// fixedNow is the clock the tests validate with.
func fixedNow() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) }

// MustValidator returns a Validator for opts or fails the test.
func MustValidator(tb testing.TB, opts Options) *Validator {
	tb.Helper()
	v, err := NewValidator(opts)
	if err != nil {
		tb.Fatalf("NewValidator: %v", err)
	}
	return v
}

// ukcoreExamples returns the UK Core example resources, one per line, or
// skips the test when the shared data is absent.
func ukcoreExamples(tb testing.TB) [][]byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(sharedData, "ukcore-examples.ndjson"))
	if os.IsNotExist(err) {
		tb.Skip("shared data absent: ../shared/data/ukcore-examples.ndjson not found")
	}
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, append([]byte(nil), line...))
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// syntheaBundles returns the Synthea transaction Bundles by file name, or
// skips the test when the shared data is absent.
func syntheaBundles(tb testing.TB) map[string][]json.RawMessage {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(sharedData, "synthea-20", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Skip("shared data absent: ../shared/data/synthea-20/*.json not found")
	}
	out := map[string][]json.RawMessage{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var bundle struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(b, &bundle); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		for _, e := range bundle.Entry {
			out[filepath.Base(f)] = append(out[filepath.Base(f)], e.Resource)
		}
	}
	return out
}

// syntheaResources returns every entry resource of the Synthea bundles.
func syntheaResources(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, entries := range syntheaBundles(tb) {
		for _, e := range entries {
			out = append(out, e)
		}
	}
	return out
}
