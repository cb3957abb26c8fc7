package synth

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// mix is the splitmix64 finaliser, used to derive independent PCG streams
// from (seed, index) pairs.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Stream tags keep the random streams of different uses apart.
const (
	streamPractice uint64 = 0x70726163 // "prac"
	streamPatient  uint64 = 0x70617469 // "pati"
	streamSim      uint64 = 0x73696d75 // "simu"
)

// newRand returns a PCG-backed generator for (seed, stream, index).
func newRand(seed, stream, index uint64) *rand.Rand {
	return rand.New(rand.NewPCG(mix(seed^mix(stream)), mix(index^mix(stream+seed))))
}

// chance reports true with probability p.
func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

// between returns a uniform integer in [lo, hi].
func between(r *rand.Rand, lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + r.IntN(hi-lo+1)
}

// pick returns a uniformly chosen element of xs.
func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// poisson draws from a Poisson distribution with mean lambda (Knuth for
// small means, a rounded normal approximation above 30).
func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		n := int(math.Round(lambda + math.Sqrt(lambda)*r.NormFloat64()))
		return max(n, 0)
	}
	l := math.Exp(-lambda)
	k, p := 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// randTime returns a uniform instant in [from, to), truncated to the second.
func randTime(r *rand.Rand, from, to time.Time) time.Time {
	d := to.Sub(from)
	if d <= time.Second {
		return from.Truncate(time.Second)
	}
	return from.Add(time.Duration(r.Int64N(int64(d)))).Truncate(time.Second)
}

// workingTime moves t to a plausible surgery time on the same or previous
// weekday, between 08:00 and 18:30 UTC, on a 5- or 10-minute boundary.
func workingTime(r *rand.Rand, t time.Time) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	// A weekend moves back to the Friday, never forward: a time drawn
	// before the practice's base time must stay before it.
	switch d.Weekday() {
	case time.Saturday:
		d = d.AddDate(0, 0, -1)
	case time.Sunday:
		d = d.AddDate(0, 0, -2)
	}
	mins := 8*60 + 10*r.IntN(62) // 08:00 .. 18:10
	return d.Add(time.Duration(mins) * time.Minute)
}

// fixed formats v with exactly dp decimal places, keeping trailing zeros.
func fixed(v float64, dp int) string { return strconv.FormatFloat(v, 'f', dp, 64) }

// pad writes n as a zero-padded decimal of at least width digits.
func pad(b []byte, n, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], int64(n), 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}
