//go:build !unix

package main

import "time"

// cpuTime is not measured here; the benchmark then reports zero CPU.
func cpuTime() time.Duration { return 0 }
