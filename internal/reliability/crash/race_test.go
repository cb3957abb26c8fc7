//go:build race

package crash_test

// patients is the size of the practice the crash tests migrate: smaller
// under the race detector, where instrumented code runs many times slower.
const patients = 6
