package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

// BatchSize is the number of writes per Apply in the benchmarks: what
// ingest commits at once.
const BatchSize = 1000

// ResourceJSON returns a realistic Observation of about 1.5 KB: a blood
// pressure panel with codings, components, references and narrative, its
// values varied by n so that no two are equal.
func ResourceJSON(id, patient string, n int) []byte {
	return fmt.Appendf(nil, `{"resourceType":"Observation","id":%q,"meta":{"profile":["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Observation"]},`+
		`"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs","display":"Vital Signs"}]}],`+
		`"code":{"coding":[{"system":"http://snomed.info/sct","code":"75367002","display":"Blood pressure"},{"system":"http://loinc.org","code":"85354-9","display":"Blood pressure panel with all children optional"}],"text":"Blood pressure"},`+
		`"subject":{"reference":"Patient/%s"},"encounter":{"reference":"Encounter/enc-%d"},"effectiveDateTime":"2025-%02d-%02dT09:%02d:00+00:00","issued":"2025-%02d-%02dT09:%02d:31.512+00:00",`+
		`"performer":[{"reference":"Practitioner/gp-%d","display":"Dr Example %d"}],`+
		`"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"N","display":"Normal"}]}],`+
		`"note":[{"text":"Seated, left arm, adult cuff. Patient rested for five minutes before reading %d."}],`+
		`"component":[{"code":{"coding":[{"system":"http://snomed.info/sct","code":"72313002","display":"Systolic arterial pressure"},{"system":"http://loinc.org","code":"8480-6","display":"Systolic blood pressure"}]},"valueQuantity":{"value":%d.0,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},`+
		`{"code":{"coding":[{"system":"http://snomed.info/sct","code":"1091811000000102","display":"Diastolic arterial pressure"},{"system":"http://loinc.org","code":"8462-4","display":"Diastolic blood pressure"}]},"valueQuantity":{"value":%d.0,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}],`+
		`"referenceRange":[{"low":{"value":90,"unit":"mmHg"},"high":{"value":140,"unit":"mmHg"},"text":"normal adult range"}]}`,
		id, patient, n%5000, 1+n%12, 1+n%28, n%60, 1+n%12, 1+n%28, n%60, n%40, n%40, n, 100+n%60, 60+n%30)
}

// batch returns BatchSize upserts of ResourceJSON with ids from start, in
// the compartments of 1 patient per 100 resources.
func batch(start int) []dtm.Write {
	ws := make([]dtm.Write, BatchSize)
	for i := range ws {
		n := start + i
		id, patient := "obs-"+strconv.Itoa(n), "pat-"+strconv.Itoa(n/100)
		ws[i] = Upsert("Observation", id, patient, ResourceJSON(id, patient, n))
	}
	return ws
}

// BenchmarkApply measures ingest: batches of BatchSize new ~1.5 KB
// resources applied to s, reported as resources/s (wall time of Apply alone)
// and as process CPU time per resource. s must be empty and is not closed.
func BenchmarkApply(b *testing.B, s dtm.Store) {
	ctx := context.Background()
	if _, err := s.CreatePractice(ctx, dtm.Practice{ODS: PracticeA, Name: "Bench"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var bytes int64
	var elapsed, cpu time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		ws := batch(i * BatchSize)
		for _, w := range ws {
			bytes += int64(len(w.JSON))
		}
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		c, err := s.Apply(ctx, PracticeA, ws)
		elapsed += time.Since(start)
		cpu += cpuTime() - cpu0
		if err != nil {
			b.Fatal(err)
		}
		if c.Applied != BatchSize {
			b.Fatalf("Commit = %+v", c)
		}
	}
	n := float64(b.N * BatchSize)
	b.ReportMetric(n/elapsed.Seconds(), "resources/s")
	b.ReportMetric(float64(bytes)/n, "B/resource")
	// CPU used by this process per resource (not a PostgreSQL server's):
	// unlike resources/s, it hardly depends on what else the machine runs.
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/resource")
}

// BenchmarkChanges measures a delta export's read: in a practice of `size`
// resources (DTM_BENCH_SIZE overrides it), 1,000 random resources change
// and Changes reports them. The metric ms/delta is the time of that
// Changes call alone. s must be empty and is not closed.
func BenchmarkChanges(b *testing.B, s dtm.Store, size int) {
	if v, err := strconv.Atoi(os.Getenv("DTM_BENCH_SIZE")); err == nil && v > 0 {
		size = v
	}
	size = max(BatchSize, size/BatchSize*BatchSize)
	ctx := context.Background()
	if _, err := s.CreatePractice(ctx, dtm.Practice{ODS: PracticeA, Name: "Bench"}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < size; i += BatchSize {
		if _, err := s.Apply(ctx, PracticeA, batch(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("loaded %d resources in %v (%.0f/s)", size, time.Since(start), float64(size)/time.Since(start).Seconds())
	rng := rand.New(rand.NewPCG(1, 2))
	var elapsed time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		head, err := s.Head(ctx)
		if err != nil {
			b.Fatal(err)
		}
		ws := make([]dtm.Write, BatchSize)
		picked := map[int]bool{}
		for j := range ws {
			n := rng.IntN(size)
			for picked[n] {
				n = rng.IntN(size)
			}
			picked[n] = true
			id, patient := "obs-"+strconv.Itoa(n), "pat-"+strconv.Itoa(n/100)
			ws[j] = Upsert("Observation", id, patient, ResourceJSON(id, patient, n+size*(i+1)))
		}
		c, err := s.Apply(ctx, PracticeA, ws)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		got := 0
		err = s.Changes(ctx, dtm.ChangeQuery{Practice: PracticeA, Type: "Observation", Since: head.Seq, Until: c.Seq}, func(dtm.Change) error {
			got++
			return nil
		})
		elapsed += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if got != c.Applied {
			b.Fatalf("Changes reported %d, want %d", got, c.Applied)
		}
	}
	b.ReportMetric(elapsed.Seconds()*1000/float64(b.N), "ms/delta")
}
