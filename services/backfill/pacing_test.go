package backfill

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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

// slowNormalizer holds each message the normalizer takes for a while, so
// that syncs run ahead of it and their pacing decides the order in RAW.
type slowNormalizer time.Duration

func (d slowNormalizer) Yield(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(d)):
	}
}

// A small sync that starts while a large one runs is served first: in the
// sync lane, only the large one's smaller window (LargeSyncBacklog) and a
// few of its records per look at the ack floor come between the small
// one's first and last record. Shared evenly, about as many of the large
// sync's records as the small one's own would.
func TestSmallSyncGoesAheadOfALargeOne(t *testing.T) {
	h := newHarness(t, jirasim.Options{Seed: 6, Projects: 4, IssuesPerProject: 80, CommentsPerIssue: 5, Users: 5, Groups: 2},
		func(h *harness) {
			h.embedded, h.normalizerWorkers = true, 1
			h.normalizerYield = slowNormalizer(500 * time.Microsecond)
		})
	require.Eventually(t, func() bool {
		_, err := h.js.Consumer(h.ctx, broker.StreamRaw, normalizer.ConsumerName)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	cfg := newTestConfig()
	cfg.BacklogConsumer, cfg.MaxBacklog, cfg.MaxPendingAcks = normalizer.ConsumerName, 200, 16
	cfg.LargeSyncAfter, cfg.LargeSyncBacklog = 600, 20
	h.startWorker("w1", 5*time.Second, cfg)

	large := h.connect("org-large", connections.Options{})
	largeSubject := broker.RawSubject("jira", large.ID, broker.SourceSync)
	require.Eventually(t, func() bool {
		info, err := h.js.Stream(h.ctx, broker.StreamRaw)
		if err != nil {
			return false
		}
		si, err := info.Info(h.ctx, jetstream.WithSubjectFilter(largeSubject))
		return err == nil && si.State.Subjects[largeSubject] > uint64(cfg.LargeSyncAfter)
	}, 60*time.Second, 10*time.Millisecond, "the large sync publishes past LargeSyncAfter")
	keys := h.sim.Default().ProjectKeys()
	small := h.connect("org-small", connections.Options{ProjectKeysFilter: []string{keys[0]}})

	ls := h.waitFull(small.ID, "", 120*time.Second)
	require.Equal(t, store.SyncCompleted, ls.Status, ls.LastError)
	ll := h.waitFull(large.ID, "", 120*time.Second)
	require.Equal(t, store.SyncCompleted, ll.Status, ll.LastError)
	h.drained(60 * time.Second)
	require.Equal(t, 80, h.count(small, "ticket", false))
	require.Equal(t, 320, h.count(large, "ticket", false))

	// The RAW order: how many of the large sync's records lie between the
	// small sync's first and last.
	smallSubject := broker.RawSubject("jira", small.ID, broker.SourceSync)
	oc, err := h.js.OrderedConsumer(h.ctx, broker.StreamRaw, jetstream.OrderedConsumerConfig{FilterSubjects: []string{largeSubject, smallSubject}})
	require.NoError(t, err)
	var smallN, between, pendingLarge int
	for {
		batch, err := oc.FetchNoWait(500)
		require.NoError(t, err)
		n := 0
		for m := range batch.Messages() {
			n++
			if m.Subject() == smallSubject {
				smallN++
				between += pendingLarge
				pendingLarge = 0
			} else if smallN > 0 {
				pendingLarge++
			}
		}
		require.NoError(t, batch.Error())
		if n == 0 {
			break
		}
	}
	t.Logf("%d records of the small sync; %d of the large one's between its first and last", smallN, between)
	require.Greater(t, smallN, 400)
	require.Less(t, between, smallN/3, "the small sync shared the lane with the large one instead of going first")
}
