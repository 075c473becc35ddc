package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/ingest"
)

func TestYieldWaitsOnlyWhileSaturated(t *testing.T) {
	g := ingest.New(2, 5*time.Second)
	// Not saturated: no wait at all.
	g.Yield(context.Background())
	require.Zero(t, g.Yields())

	for range 3 {
		g.Begin()
	}
	require.True(t, g.Saturated())
	done := make(chan struct{})
	go func() { g.Yield(context.Background()); close(done) }()
	select {
	case <-done:
		t.Fatal("Yield returned while ingest was saturated")
	case <-time.After(100 * time.Millisecond):
	}
	g.End() // back to the threshold: no longer saturated
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Yield did not return once ingest was no longer saturated")
	}
	require.EqualValues(t, 1, g.Yields())
}

func TestYieldIsBounded(t *testing.T) {
	g := ingest.New(1, 50*time.Millisecond)
	g.Begin()
	g.Begin()
	start := time.Now()
	g.Yield(context.Background())
	require.Less(t, time.Since(start), 2*time.Second, "a hold lasts at most MaxHold (plus a step)")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g2 := ingest.New(1, time.Hour)
	g2.Begin()
	g2.Begin()
	g2.Yield(ctx) // returns at once: the context ended
}

// A burst's requests in flight dip between a client's answer and its next
// request; the gate must not open at each dip, only once the burst is over.
func TestSaturationOutlastsDips(t *testing.T) {
	g := ingest.New(8, time.Minute)
	release := make([]func(), 0, 9)
	for range 9 {
		g.Begin()
		release = append(release, g.End)
	}
	require.True(t, g.Saturated())
	// A dip to 3 in flight, above the low mark (8/4), while requests keep
	// beginning: still saturated well past the linger.
	for _, end := range release[:6] {
		end()
	}
	for range 10 {
		g.Begin()
		g.End()
		time.Sleep(30 * time.Millisecond)
		require.True(t, g.Saturated(), "the gate opened in a dip of the burst")
	}
	// The burst is over: under the low mark, the gate opens after the
	// linger.
	for _, end := range release[6:] {
		end()
	}
	require.Eventually(t, func() bool { return !g.Saturated() }, time.Second, 10*time.Millisecond)
	g.Yield(context.Background())
	require.Zero(t, g.Yields())
}

// After a hold of MaxHold the gate opens for a relief, during which workers
// pass at once, and then holds again.
func TestHoldEndsInARelief(t *testing.T) {
	g := ingest.New(1, 200*time.Millisecond)
	g.Begin()
	g.Begin()
	start := time.Now()
	g.Yield(context.Background())
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "the hold ended early")
	start = time.Now()
	g.Yield(context.Background())
	require.Less(t, time.Since(start), 20*time.Millisecond, "a worker waited during the relief")
	require.Eventually(t, func() bool {
		start := time.Now()
		g.Yield(context.Background())
		return time.Since(start) >= 100*time.Millisecond
	}, 2*time.Second, 10*time.Millisecond, "no new hold after the relief")
}

// A hold that no worker saw end belongs to an earlier burst: the next
// burst is held from its start, not let through as if a hold had just
// ended.
func TestStaleHoldDoesNotOpenTheGate(t *testing.T) {
	g := ingest.New(1, 100*time.Millisecond)
	g.Begin()
	g.Begin()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	g.Yield(ctx) // starts a hold, then leaves: nobody waits for its end
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	g.Yield(context.Background())
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "a stale hold opened the gate")
}
