// Package backfill runs periodic full and incremental syncs that reconcile
// the store with the vendor. The sync engine is built in its own issue; until
// then the worker only holds its place in the process lifecycle.
package backfill

import (
	"context"

	"go.uber.org/zap"
)

// Worker is the backfill worker.
type Worker struct {
	log *zap.Logger
}

// New builds a worker.
func New(log *zap.Logger) *Worker { return &Worker{log: log} }

// Run blocks until ctx is cancelled.
func (w *Worker) Run(ctx context.Context) error {
	w.log.Info("backfill worker idle: full and incremental syncs are not built yet")
	<-ctx.Done()
	return nil
}
