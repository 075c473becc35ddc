//go:build !unix

package receiver_test

import "time"

// cpuTime is not measured here; the benchmark then reports zero CPU.
func cpuTime() time.Duration { return 0 }
