package synth

import (
	"context"
	"testing"
	"time"
)

// BenchmarkGenerate measures generation speed in resources per second,
// with emit doing nothing but counting.
func BenchmarkGenerate(b *testing.B) {
	opts := Options{Practice: "A81001", Patients: 200, Seed: 1, Base: DefaultBase}
	total, bytes := 0, 0
	start := time.Now()
	for b.Loop() {
		err := Generate(context.Background(), opts, func(_ string, js []byte) error {
			total++
			bytes += len(js)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(total)/secs, "resources/s")
	b.ReportMetric(float64(bytes)/secs/1e6, "MB/s")
	b.ReportMetric(float64(total)/float64(b.N*opts.Patients), "resources/patient")
}
