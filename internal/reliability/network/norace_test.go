//go:build !race

package network_test

// raceEnabled is true under the race detector, which makes the tests run
// fewer, smaller trials to stay fast.
const raceEnabled = false
