package snsim

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock supplies the instance's data time: sys_created_on / sys_updated_on of
// writes, token expiry and the hourly rate-limit windows.
type Clock interface {
	Now() time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// ManualClock only moves when told to, so tests cross expiries and rate-limit
// hours without sleeping.
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

// simClock adds an offset to a base clock so Sim.Advance works whatever clock
// the caller supplied (including the real one, for the binary).
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

// snTime is the Table API's date-time layout (UTC with display_value=false).
const snTime = "2006-01-02 15:04:05"

func fmtTime(t time.Time) string { return t.UTC().Format(snTime) }
