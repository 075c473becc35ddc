// Package ingest lets a process's ingest go first. When the receiver and
// the normalizer share one process (the all-in-one binary), a burst of
// webhooks makes them compete for the same cores, and every webhook
// answered late is one the vendor may retry or drop. A Gate watches the
// receiver's webhooks in flight; while ingest is saturated, the
// normalizer's workers wait before their next message, and JetStream holds
// what they have not processed yet.
//
// A hold is bounded: after MaxHold of continuous saturation the gate opens
// for a while (the relief) before holding again, so that a saturation that
// lasts still drains, and no message the normalizer has pulled waits
// anywhere near JetStream's AckWait (MaxHold must stay well below it).
package ingest

import (
	"context"
	"sync/atomic"
	"time"
)

// Defaults of a Gate.
const (
	// DefaultThreshold: webhooks in flight at once above which ingest counts
	// as saturated. Under a steady rate the receiver answers in a few
	// milliseconds and holds a few requests at a time; a burst queues them.
	DefaultThreshold = 32
	// DefaultMaxHold bounds one continuous hold, a third of the
	// normalizer's default AckWait (30 s).
	DefaultMaxHold = 10 * time.Second
	// linger: once saturated, ingest stays so until no webhook has found
	// more than the low mark in flight for this long. Requests in flight
	// dip between a client's answer and its next request; without it the
	// normalizer would slip through every dip.
	linger = 100 * time.Millisecond
	// step is how often a waiting worker looks again.
	step = 25 * time.Millisecond
)

// Gate is shared by the receiver (Begin, End) and the normalizer (Yield).
// The zero value is not usable: build it with New.
type Gate struct {
	threshold int64
	// low is the level ingest stays saturated above, once it was above
	// threshold: hysteresis, so that a burst is not seen as over while it
	// still holds many requests.
	low     int64
	maxHold time.Duration
	relief  time.Duration

	inflight atomic.Int64
	// busyAt is when a webhook last began while ingest was saturated
	// (Unix nanoseconds).
	busyAt atomic.Int64
	// holdFrom is when the current hold began, 0 when none.
	holdFrom atomic.Int64
	// openUntil ends the relief after a hold that ran its course.
	openUntil atomic.Int64
	yields    atomic.Int64
}

// New returns a Gate: more than threshold webhooks in flight saturate
// ingest, and a hold lasts at most maxHold. Zero or negative values take
// the defaults.
func New(threshold int, maxHold time.Duration) *Gate {
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	if maxHold <= 0 {
		maxHold = DefaultMaxHold
	}
	// The relief is long enough for the workers to clear what they had
	// pulled before the hold, short enough to leave ingest most of a
	// saturation that lasts.
	relief := max(maxHold/5, 4*step)
	return &Gate{threshold: int64(threshold), low: max(int64(threshold)/4, 1), maxHold: maxHold, relief: relief}
}

// Begin and End bracket one webhook request.
func (g *Gate) Begin() {
	n := g.inflight.Add(1)
	if n <= g.low {
		return
	}
	now := time.Now().UnixNano()
	if n > g.threshold || g.busy(now) {
		g.busyAt.Store(now)
	}
}

func (g *Gate) End() { g.inflight.Add(-1) }

func (g *Gate) busy(now int64) bool {
	return g.inflight.Load() > g.threshold || now-g.busyAt.Load() < int64(linger)
}

// Saturated reports whether ingest is saturated: more webhooks than the
// threshold are in flight, or were lately and more than the low mark
// kept beginning since.
func (g *Gate) Saturated() bool { return g.busy(time.Now().UnixNano()) }

// Yield waits while ingest is saturated, for the rest of the current hold
// at most, or until ctx ends.
func (g *Gate) Yield(ctx context.Context) {
	now := time.Now().UnixNano()
	if !g.busy(now) || now < g.openUntil.Load() {
		return
	}
	h := g.hold(now)
	if h == 0 {
		return
	}
	g.yields.Add(1)
	t := time.NewTimer(step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now = time.Now().UnixNano()
		if !g.busy(now) {
			g.holdFrom.CompareAndSwap(h, 0)
			return
		}
		if now < g.openUntil.Load() {
			return
		}
		if h = g.hold(now); h == 0 {
			return
		}
		t.Reset(step)
	}
}

// hold returns when the current hold began, starting one if none is on;
// or 0 during the relief, which it opens when the current hold has lasted
// maxHold.
func (g *Gate) hold(now int64) int64 {
	for {
		if now < g.openUntil.Load() {
			return 0
		}
		h := g.holdFrom.Load()
		switch {
		case h == 0:
			if g.holdFrom.CompareAndSwap(0, now) {
				return now
			}
		case now-h < int64(g.maxHold):
			return h
		case now-h < int64(g.maxHold+g.relief):
			g.openUntil.Store(now + int64(g.relief))
			g.holdFrom.CompareAndSwap(h, 0)
			return 0
		default:
			// A hold no worker saw end (none was waiting): an earlier
			// burst's. This one starts its own.
			if g.holdFrom.CompareAndSwap(h, now) {
				return now
			}
		}
	}
}

// Yields counts the messages that waited for ingest.
func (g *Gate) Yields() int64 { return g.yields.Load() }
