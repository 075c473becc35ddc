//go:build unix

// Package cputime reads the CPU time a process has used. Benchmarks report
// CPU per unit of work beside their rates: on a machine shared with other
// work, rates follow the neighbours' load, CPU per unit much less so.
package cputime

import (
	"syscall"
	"time"
)

// Self is the user and system CPU time this process has used.
func Self() time.Duration { return usage(syscall.RUSAGE_SELF) }

// WithChildren is Self plus the CPU time of the children this process has
// waited for (a benchmark's worker process).
func WithChildren() time.Duration { return Self() + usage(syscall.RUSAGE_CHILDREN) }

func usage(who int) time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
