// Package ingest lets a process's ingest go first. When the receiver and
// the normalizer share one process (the all-in-one binary), a burst of
// webhooks makes them compete for the same cores, and every webhook
// answered late is one the vendor may retry or drop. A Gate measures the
// receiver's webhooks in flight; while more than its threshold are, the
// normalizer's workers wait before each message (up to a bound per
// message, so the backlog still drains), and JetStream holds what they have
// not processed yet.
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
	// DefaultMaxWait bounds how long one message waits for ingest, far
	// below JetStream's AckWait.
	DefaultMaxWait = time.Second
	// step is how often a waiting worker looks again.
	step = 20 * time.Millisecond
)

// Gate is shared by the receiver (Begin, End) and the normalizer (Yield).
// The zero value is not usable: build it with New.
type Gate struct {
	threshold int64
	maxWait   time.Duration
	inflight  atomic.Int64
	yields    atomic.Int64
}

// New returns a Gate; zero or negative values take the defaults.
func New(threshold int, maxWait time.Duration) *Gate {
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	return &Gate{threshold: int64(threshold), maxWait: maxWait}
}

// Begin and End bracket one webhook request.
func (g *Gate) Begin() { g.inflight.Add(1) }
func (g *Gate) End()   { g.inflight.Add(-1) }

// Saturated reports whether more webhooks than the threshold are in flight.
func (g *Gate) Saturated() bool { return g.inflight.Load() > g.threshold }

// Yield waits while ingest is saturated, at most the gate's MaxWait, or
// until ctx ends.
func (g *Gate) Yield(ctx context.Context) {
	if !g.Saturated() {
		return
	}
	g.yields.Add(1)
	deadline := time.Now().Add(g.maxWait)
	t := time.NewTimer(step)
	defer t.Stop()
	for g.Saturated() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(step)
		}
	}
}

// Yields counts the messages that waited for ingest.
func (g *Gate) Yields() int64 { return g.yields.Load() }
