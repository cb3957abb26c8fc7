package synth

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"

	"github.com/dtm-project/dtm/ukcore"
)

// TestGenerate_StructurallyValid checks every resource of a 200-patient
// practice with the google/fhir R4 unmarshaller (required fields,
// reference types, primitive formats).
func TestGenerate_StructurallyValid(t *testing.T) {
	n, every := 200, 1
	if testing.Short() || raceEnabled {
		n, every = 50, 40 // the validator is slow under the race detector: sample
	}
	type res struct {
		typ  string
		json []byte
	}
	ch := make(chan res, 256)
	var (
		mu       sync.Mutex
		failures []string
		count    int
	)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
			if err != nil {
				t.Error(err)
				return
			}
			for r := range ch {
				_, err := u.Unmarshal(r.json)
				mu.Lock()
				count++
				if err != nil && len(failures) < 20 {
					failures = append(failures, r.typ+": "+err.Error()+"\n  "+string(r.json))
				}
				mu.Unlock()
			}
		}()
	}
	opts := Options{Practice: "A81001", Patients: n, Seed: 7, Base: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	i := 0
	err := Generate(context.Background(), opts, func(typ string, js []byte) error {
		if i++; i%every != 0 && i > 500 {
			return nil
		}
		ch <- res{typ, bytes.Clone(js)}
		return nil
	})
	close(ch)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("validated %d resources", count)
}

// TestValidateDir checks a practice written by "dtm generate" when
// SYNTH_VALIDATE_DIR names its directory: every line structurally valid R4,
// every reference resolvable, every NHS number valid. It is skipped
// otherwise; docs/BENCHMARKS.md shows how it was run.
func TestValidateDir(t *testing.T) {
	dir := os.Getenv("SYNTH_VALIDATE_DIR")
	if dir == "" {
		t.Skip("SYNTH_VALIDATE_DIR not set")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if err != nil || len(files) < 20 {
		t.Fatalf("%d NDJSON files in %s (%v), want at least 20", len(files), dir, err)
	}
	exists := map[string]bool{}
	var refs []string
	refPattern := regexp.MustCompile(`"reference":"([^"]+)"`)
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		t.Fatal(err)
	}
	total, invalid := 0, 0
	for _, f := range files {
		typ := strings.TrimSuffix(filepath.Base(f), ".ndjson")
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.Lines(data) {
			total++
			if _, err := u.Unmarshal(line); err != nil {
				if invalid++; invalid < 10 {
					t.Errorf("%s: %v", typ, err)
				}
			}
			exists[typ+"/"+resourceID(line)] = true
			for _, m := range refPattern.FindAllSubmatch(line, -1) {
				refs = append(refs, string(m[1]))
			}
			if typ == "Patient" {
				nhs := regexp.MustCompile(`"system":"https://fhir.nhs.uk/Id/nhs-number","value":"(\d+)"`).FindSubmatch(line)
				if nhs == nil || !ukcore.ValidNHSNumber(string(nhs[1])) {
					t.Errorf("Patient/%s: bad NHS number", resourceID(line))
				}
			}
		}
	}
	unresolved := 0
	for _, r := range refs {
		if !exists[r] {
			unresolved++
		}
	}
	t.Logf("%d files, %d resources, %d invalid, %d references, %d unresolved", len(files), total, invalid, len(refs), unresolved)
	if invalid > 0 || unresolved > 0 {
		t.Errorf("%d invalid resources, %d unresolved references", invalid, unresolved)
	}
}
