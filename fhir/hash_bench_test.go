package fhir

import (
	"bufio"
	"os"
	"testing"
	"time"
)

// BenchmarkStampAndHash measures what the store does to every ingested
// resource: stamp its meta and hash its content.
func BenchmarkStampAndHash(b *testing.B) {
	f, err := os.Open("../../shared/data/ukcore-examples.ndjson")
	if err != nil {
		b.Skipf("test data absent: %v", err)
	}
	defer f.Close()
	var lines [][]byte
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		lines = append(lines, append([]byte(nil), s.Bytes()...))
	}
	at := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		line := lines[i%len(lines)]
		stamped, err := StampMeta(line, 2, at)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ContentHash(stamped); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
}
