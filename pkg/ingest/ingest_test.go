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
	require.Less(t, time.Since(start), 2*time.Second, "one message waits at most MaxWait (plus a step)")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g2 := ingest.New(1, time.Hour)
	g2.Begin()
	g2.Begin()
	g2.Yield(ctx) // returns at once: the context ended
}
