package synth

import (
	"context"
	"testing"
)

// BenchmarkSimulator_Week simulates one week of a 10,000-patient practice
// and reports events per simulated week and events per second.
func BenchmarkSimulator_Week(b *testing.B) {
	opts := Options{Practice: "A81001", Patients: 10000, Seed: 1, Base: DefaultBase}
	events := 0
	for b.Loop() {
		s, err := NewSimulator(opts, 1, monday)
		if err != nil {
			b.Fatal(err)
		}
		err = s.Step(context.Background(), monday.AddDate(0, 0, 7), func(Event) error { events++; return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events)/float64(b.N), "events/week")
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
