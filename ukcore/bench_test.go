package ukcore

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the CPU time (user and system) the process has used, so
// that benchmarks can report resources per CPU-second, which other load on
// a shared machine skews far less than wall-clock rates.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkValidate measures Validate over real resources: the UK Core
// examples and the Synthea bundles' entries (skipped without ../shared/data).
// Run: go test ./ukcore/ -run '^$' -bench Validate -benchtime 5s
func BenchmarkValidate(b *testing.B) {
	corpora := []struct {
		name string
		load func(testing.TB) [][]byte
	}{
		{"ukcore-examples", ukcoreExamples},
		{"synthea", syntheaResources},
	}
	v := MustValidator(b, Options{Now: fixedNow})
	for _, c := range corpora {
		resources := c.load(b)
		var size int64
		for _, r := range resources {
			size += int64(len(r))
		}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size / int64(len(resources)))
			b.ReportAllocs()
			cpu0 := cpuTime()
			i := 0
			for b.Loop() {
				v.Validate(resources[i%len(resources)])
				i++
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "resources/s")
			b.ReportMetric(float64(i)/(cpuTime()-cpu0).Seconds(), "resources/cpu-s")
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.SetBytes(size / int64(len(resources)))
			b.ReportAllocs()
			var n atomic.Int64
			start, cpu0 := time.Now(), cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					v.Validate(resources[i%len(resources)])
					i++
				}
				n.Add(int64(i))
			})
			b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "resources/s")
			b.ReportMetric(float64(n.Load())/(cpuTime()-cpu0).Seconds(), "resources/cpu-s")
		})
		b.Run(c.name+"/structure-only", func(b *testing.B) {
			i := 0
			for b.Loop() {
				v.structure(resources[i%len(resources)])
				i++
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "resources/s")
		})
		b.Run(c.name+"/rules-only", func(b *testing.B) {
			i := 0
			for b.Loop() {
				obj, _ := decodeObject(resources[i%len(resources)])
				w := walker{v: v, now: fixedNow()}
				w.walkRoot(obj)
				i++
			}
			b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "resources/s")
		})
	}
}

// BenchmarkDecodeObject compares decodeObject with the encoding/json
// decoder it replaced, over the Synthea resources.
// Run: go test ./ukcore/ -run '^$' -bench DecodeObject
func BenchmarkDecodeObject(b *testing.B) {
	resources := syntheaResources(b)
	for _, d := range []struct {
		name   string
		decode func([]byte) (map[string]any, bool)
	}{{"ukcore", decodeObject}, {"encoding-json", decodeObjectStd}} {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := d.decode(resources[i%len(resources)]); !ok {
					b.Fatal("not decoded")
				}
				i++
			}
		})
	}
}
