package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// memPeak is what a measure used at most: the Go heap in use and the
// resident set of the whole process, in MiB.
type memPeak struct {
	heapMiB, rssMiB float64
}

// measure runs fn, sampling the Go heap in use and the process's RSS every
// 20 ms meanwhile, and returns the elapsed time and the peaks. It first
// returns freed heap to the operating system and, on Linux, resets the
// kernel's RSS high-water mark (/proc/self/clear_refs), so that VmHWM
// afterwards is this measure's own peak, samples or not. The RSS still
// holds what the process keeps between measures: the stores' page caches.
func measure(fn func() error) (time.Duration, memPeak, error) {
	done := make(chan struct{})
	peaks := make(chan memPeak, 1)
	debug.FreeOSMemory() // a collection, and the heap earlier measures left behind returned to the OS
	hwmReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	go func() {
		var ms runtime.MemStats
		var p memPeak
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			p.heapMiB = max(p.heapMiB, float64(ms.HeapInuse)/(1<<20))
			p.rssMiB = max(p.rssMiB, float64(procStatusKB("VmRSS"))/1024)
			select {
			case <-done:
				peaks <- p
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	err := fn()
	elapsed := time.Since(start)
	close(done)
	p := <-peaks
	if hwmReset {
		p.rssMiB = max(p.rssMiB, float64(procStatusKB("VmHWM"))/1024)
	}
	return elapsed, p, err
}

// procStatusKB returns a "kB" field of /proc/self/status (0 when there is
// none, as off Linux).
func procStatusKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// loadAverage returns the 1, 5 and 15-minute load averages ("" off Linux).
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// load1 returns the 1-minute load average (0 when unknown).
func load1() float64 {
	f := strings.Fields(loadAverage())
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// growthRow is one measure over practice sizes.
type growthRow struct {
	Name    string          `json:"name"`
	Unit    string          `json:"unit"`
	Stores  string          `json:"stores"`
	Values  map[int]float64 `json:"valueByPatients"`
	PeakRSS map[int]float64 `json:"peakRSSMiBByPatients"`
	Heap    map[int]float64 `json:"peakHeapMiBByPatients"`
}

// growth arranges results by measure and practice size, in the order the
// measures were first taken.
func growth(results []benchResult) []growthRow {
	var rows []growthRow
	index := map[string]int{}
	for _, r := range results {
		if r.Patients == 0 {
			continue
		}
		key := r.Stores + "|" + r.Name
		i, ok := index[key]
		if !ok {
			i = len(rows)
			index[key] = i
			rows = append(rows, growthRow{Name: r.Name, Unit: r.Unit, Stores: r.Stores,
				Values: map[int]float64{}, PeakRSS: map[int]float64{}, Heap: map[int]float64{}})
		}
		rows[i].Values[r.Patients] = r.Value
		rows[i].PeakRSS[r.Patients] = r.PeakRSS
		rows[i].Heap[r.Patients] = r.PeakMiB
	}
	return rows
}

// printGrowth writes the growth table: each measure's figure by practice
// size, then its peak RSS by size.
func printGrowth(e *env, rows []growthRow, sizes []int) {
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\ngrowth (%s): figure by practice size | peak RSS MiB by size\n", rows[0].Stores)
	fmt.Fprintf(w, "%-52s %-12s", "measure", "unit")
	for _, n := range sizes {
		fmt.Fprintf(w, " %12s", fmt.Sprintf("%d pts", n))
	}
	fmt.Fprint(w, " |")
	for _, n := range sizes {
		fmt.Fprintf(w, " %8s", fmt.Sprintf("%d", n))
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "%-52s %-12s", r.Name, r.Unit)
		for _, n := range sizes {
			if v, ok := r.Values[n]; ok {
				fmt.Fprintf(w, " %12.1f", v)
			} else {
				fmt.Fprintf(w, " %12s", "-")
			}
		}
		fmt.Fprint(w, " |")
		for _, n := range sizes {
			if v, ok := r.PeakRSS[n]; ok {
				fmt.Fprintf(w, " %8.0f", v)
			} else {
				fmt.Fprintf(w, " %8s", "-")
			}
		}
		fmt.Fprintln(w)
	}
}
