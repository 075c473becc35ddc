package backfill

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/services/normalizer"
)

// A sync paced by the normalizer stays within its backlog bound however slow
// the normalizer is, and still completes with everything stored.
func TestSyncStaysWithinTheNormalizersBacklog(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 5, Projects: 2, IssuesPerProject: 60, CommentsPerIssue: 12, Users: 5, Groups: 2},
		func(h *harness) { h.embedded, h.normalizerWorkers = true, 1 })
	require.Eventually(t, func() bool {
		_, err := h.js.Consumer(h.ctx, broker.StreamRaw, normalizer.ConsumerName)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	c := h.connect("org-a", connections.Options{})
	cfg := newTestConfig()
	cfg.BacklogConsumer, cfg.MaxBacklog, cfg.MaxPendingAcks = normalizer.ConsumerName, 100, 16

	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			cons, err := h.js.Consumer(h.ctx, broker.StreamRaw, normalizer.ConsumerName)
			if err != nil {
				continue
			}
			info := cons.CachedInfo()
			if n := info.NumPending + uint64(info.NumAckPending); n > peak.Load() {
				peak.Store(n)
			}
		}
	}()
	h.startWorker("w1", 5*time.Second, cfg)
	ls := h.waitFull(c.ID, "", 60*time.Second)
	close(done)
	require.Equal(t, store.SyncCompleted, ls.Status, ls.LastError)
	h.drained(60 * time.Second)
	require.Equal(t, 120, h.count(c, "ticket", false))
	require.Equal(t, 120*12, h.count(c, "comment", false))

	total := ls.Objects
	bound := uint64(cfg.MaxBacklog + cfg.MaxPendingAcks + pacingEvery)
	t.Logf("peak backlog %d of %d records (bound %d)", peak.Load(), total, bound)
	require.Greater(t, uint64(total), 2*bound, "the sync is large enough for the bound to matter")
	require.LessOrEqual(t, peak.Load(), bound, "the sync ran ahead of the normalizer")
}
