//go:build !unix

package normalizer

import "time"

// cpuTime is not measured here; the benchmark then reports zero CPU.
func cpuTime() time.Duration { return 0 }
