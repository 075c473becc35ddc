package app

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"go.uber.org/zap"
)

// supervisor runs a process's workers (the services, the listeners, the
// upkeep loops) under one context: the first to fail stops the others and
// is named in the error Wait returns and in /readyz meanwhile.
type supervisor struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	log    *zap.Logger
	wg     sync.WaitGroup

	mu     sync.Mutex
	first  error
	failed map[string]string
}

func newSupervisor(parent context.Context, log *zap.Logger) *supervisor {
	ctx, cancel := context.WithCancelCause(parent)
	return &supervisor{ctx: ctx, cancel: cancel, log: log, failed: map[string]string{}}
}

// Go runs a named worker until the supervisor's context ends.
func (s *supervisor) Go(name string, run func(ctx context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := run(s.ctx)
		if err == nil {
			return
		}
		err = fmt.Errorf("%s: %w", name, err)
		s.mu.Lock()
		s.failed[name] = "failed"
		if s.first == nil {
			s.first = err
		}
		s.mu.Unlock()
		if s.ctx.Err() == nil {
			s.log.Error("worker failed; stopping the process", zap.String("worker", name), zap.Error(err))
		}
		s.cancel(err)
	}()
}

// Stop ends every worker's context.
func (s *supervisor) Stop() { s.cancel(context.Canceled) }

// Wait waits for every worker and returns the first failure.
func (s *supervisor) Wait() error {
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// Failed names the workers that failed.
func (s *supervisor) Failed() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.failed)
}
