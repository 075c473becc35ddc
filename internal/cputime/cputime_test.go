//go:build unix

package cputime

import (
	"testing"
	"time"
)

// Burning CPU shows in Self, and WithChildren is never less than it.
func TestSelfCountsWork(t *testing.T) {
	before := Self()
	deadline := time.Now().Add(50 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	_ = x
	if got := Self() - before; got < 10*time.Millisecond {
		t.Fatalf("50 ms of busy work counted as %v of CPU", got)
	}
	self := Self()
	if with := WithChildren(); with < self {
		t.Fatalf("WithChildren %v is less than Self %v read before it", with, self)
	}
}
