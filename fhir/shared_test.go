package fhir

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
)

// sharedData returns the path of the project's shared test data directory
// (../shared/data next to the repository, or $DTM_SHARED_DATA), skipping
// the test with a clear message when it is absent, as in a user's clone.
func sharedData(tb testing.TB, name string) string {
	tb.Helper()
	dir := os.Getenv("DTM_SHARED_DATA")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "data")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("shared test data absent (%v): set DTM_SHARED_DATA or check out ../shared/data", err)
	}
	return p
}

// MustReadLines returns the non-empty lines of an NDJSON file.
func MustReadLines(tb testing.TB, path string) [][]byte {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	var out [][]byte
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}
