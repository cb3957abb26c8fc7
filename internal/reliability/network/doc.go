// Package network holds the network reliability tests of issue 10: pulls
// from a real source (package bulk over a SQLite store holding a synthetic
// practice) through a fault-injecting proxy (internal/faultproxy), which must
// end with the target exactly equal to the source or fail with an error
// naming the cause and the checkpoint unmoved; and a load test of 50
// concurrent clients exporting from one source while ingest continues.
//
// The package has no code of its own: everything is in its tests. A fast
// mode runs in CI; -long (or DTM_RELIABILITY_LONG=1) runs many more trials.
// docs/RELIABILITY.md records the guarantees and the figures.
package network
