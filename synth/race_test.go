//go:build race

package synth

// raceEnabled is true when tests run under the race detector, which makes
// the reference validator too slow to check every resource.
const raceEnabled = true
