package app

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// The first worker to fail stops the others; Wait names it, and Failed
// shows it meanwhile (for /readyz).
func TestSupervisorStopsEveryWorkerWhenOneFails(t *testing.T) {
	s := newSupervisor(context.Background(), zaptest.NewLogger(t))
	stopped := make(chan string, 2)
	for _, name := range []string{"a", "b"} {
		s.Go(name, func(ctx context.Context) error {
			<-ctx.Done()
			stopped <- name
			return nil
		})
	}
	boom := errors.New("boom")
	s.Go("c", func(context.Context) error { return boom })
	err := s.Wait()
	require.ErrorIs(t, err, boom)
	require.EqualError(t, err, "c: boom")
	require.Len(t, stopped, 2, "both other workers stopped")
	require.Equal(t, map[string]string{"c": "failed"}, s.Failed())
}

// A stopped supervisor's workers end without an error.
func TestSupervisorStop(t *testing.T) {
	s := newSupervisor(context.Background(), zaptest.NewLogger(t))
	s.Go("a", func(ctx context.Context) error { <-ctx.Done(); return nil })
	s.Stop()
	require.NoError(t, s.Wait())
	require.Empty(t, s.Failed())
}
