package jirasim

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock supplies "now" for everything the simulator treats as Jira data time:
// token and webhook expiry, fields.updated of mutations, relative JQL dates.
type Clock interface {
	Now() time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// ManualClock only moves when told to, so tests can cross an expiry boundary
// without sleeping.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock frozen at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t} }

// Now returns the current manual time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// simClock adds an offset to a base clock so Sim.Advance works whatever clock
// the caller supplied (including the real one, for the demo binary).
type simClock struct {
	base   Clock
	offset atomic.Int64
}

func (c *simClock) Now() time.Time {
	return c.base.Now().Add(time.Duration(c.offset.Load()))
}

func (c *simClock) advance(d time.Duration) time.Time {
	c.offset.Add(int64(d))
	return c.Now()
}
