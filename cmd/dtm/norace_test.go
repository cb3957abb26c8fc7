//go:build !race

package main

// raceEnabled is true under the race detector, under which the slower
// measurement harnesses skip: their stages run under it in TestBench_Quick.
const raceEnabled = false
