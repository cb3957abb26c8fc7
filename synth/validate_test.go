package synth

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
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
