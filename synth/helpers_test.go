package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// resource is one generated resource, decoded once for the tests.
type resource struct {
	Type string
	ID   string
	JSON []byte
	Obj  map[string]any
}

var testOpts = Options{Practice: "A81001", Patients: 80, Seed: 42, Base: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}

var (
	practiceOnce sync.Once
	practiceRes  []resource
	practiceErr  error
)

// MustPractice returns the resources of testOpts' practice, generated once
// per test binary.
func MustPractice(tb testing.TB) []resource {
	tb.Helper()
	practiceOnce.Do(func() {
		practiceErr = Generate(context.Background(), testOpts, func(typ string, js []byte) error {
			r := resource{Type: typ, JSON: bytes.Clone(js)}
			d := json.NewDecoder(bytes.NewReader(r.JSON))
			d.UseNumber()
			if err := d.Decode(&r.Obj); err != nil {
				return err
			}
			r.ID, _ = r.Obj["id"].(string)
			practiceRes = append(practiceRes, r)
			return nil
		})
	})
	if practiceErr != nil {
		tb.Fatal(practiceErr)
	}
	return practiceRes
}

// walk calls fn for every JSON object inside v, depth first.
func walk(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
		for _, c := range x {
			walk(c, fn)
		}
	case []any:
		for _, c := range x {
			walk(c, fn)
		}
	}
}
