// Package simclock is the clock the vendor simulators keep their data time
// on: the wall clock, a manual one tests move, and an offset over either
// that a simulator's Advance moves.
package simclock

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Clock supplies "now" for everything a simulator treats as vendor data
// time: token and webhook expiry, modification times of writes, rate-limit
// windows, relative dates in queries.
type Clock interface {
	Now() time.Time
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Manual only moves when told to, so tests cross expiries and rate-limit
// windows without sleeping.
type Manual struct {
	mu  sync.Mutex
	now time.Time
}

// NewManual returns a clock frozen at t.
func NewManual(t time.Time) *Manual { return &Manual{now: t} }

// Now returns the current manual time.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Manual) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Manual) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Offset adds an offset to a base clock, so that a simulator's Advance works
// whatever clock the caller supplied (the real one too, for the binaries).
type Offset struct {
	Base   Clock
	offset atomic.Int64
}

// Now is the base clock's time plus the offset.
func (c *Offset) Now() time.Time {
	return c.Base.Now().Add(time.Duration(c.offset.Load()))
}

// Advance moves the offset forward by d and returns the new time.
func (c *Offset) Advance(d time.Duration) time.Time {
	c.offset.Add(int64(d))
	return c.Now()
}

// Duration is a time.Duration that the simulators' options and control
// endpoints read and write in JSON as a Go duration string ("150ms"), also
// accepting a number of milliseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalJSON accepts "150ms" or 150 (milliseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' {
		v, err := time.ParseDuration(s[1 : len(s)-1])
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if _, err := fmt.Sscan(s, &ms); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}
