package fhir

import "testing"

// BenchmarkIngestPath measures what ingest does per resource before
// storing it: ParseHeader then Compartment, over the UK Core examples of
// 1-2.5 KB (about 1.4 KB on average).
func BenchmarkIngestPath(b *testing.B) {
	var rs [][]byte
	for _, l := range MustReadLines(b, sharedData(b, "ukcore-examples.ndjson")) {
		if len(l) >= 1000 && len(l) <= 2500 {
			rs = append(rs, l)
		}
	}
	size := 0
	for _, r := range rs {
		size += len(r)
	}
	b.SetBytes(int64(size / len(rs)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := rs[i%len(rs)]
		h, err := ParseHeader(r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Compartment(h.ResourceType, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
}
