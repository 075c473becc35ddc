//go:build !unix

// Package cputime reads the CPU time a process has used; elsewhere than on
// Unix it is not measured, and benchmarks report zero CPU.
package cputime

import "time"

// Self is not measured here.
func Self() time.Duration { return 0 }

// WithChildren is not measured here.
func WithChildren() time.Duration { return 0 }
