//go:build race

package target_test

// raceEnabled is true under the race detector, which makes the end-to-end
// tests use smaller practices to stay fast.
const raceEnabled = true
