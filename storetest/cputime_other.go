//go:build !unix

package storetest

import "time"

// cpuTime returns 0: process CPU time is measured on unix only.
func cpuTime() time.Duration { return 0 }
