//go:build unix

package normalizer

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the test process has used. The
// benchmark reports CPU per event besides the rates: on a machine shared
// with other work, rates follow the load, CPU per event much less so.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
