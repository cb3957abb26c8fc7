package fhir

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkReadBundle reads the largest Synthea transaction Bundle (about
// 2 MB, 600 entries) from memory: both passes, urn:uuid rewriting and
// compaction, reporting resources/s.
func BenchmarkReadBundle(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(sharedData(b, "synthea-20"), "patient-*.json"))
	var data []byte
	for _, f := range files {
		d, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		if len(d) > len(data) {
			data = d
		}
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := ReadBundle(bytes.NewReader(data), func(BundleEntry) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
}

// BenchmarkNDJSONReader reads the UK Core examples as one NDJSON stream.
func BenchmarkNDJSONReader(b *testing.B) {
	data, err := os.ReadFile(sharedData(b, "ukcore-examples.ndjson"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := NewNDJSONReader(bytes.NewReader(data), NDJSONOptions{})
		for {
			_, _, err := r.Next()
			if err != nil {
				break
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
}
