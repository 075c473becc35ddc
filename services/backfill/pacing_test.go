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
	cfg := newTestConfig()
	cfg.BacklogConsumer, cfg.MaxBacklog, cfg.MaxPendingAcks = normalizer.ConsumerName, 100, 16
	_, _, ls, peak := pacedFullSync(t, cfg, normalizer.ConsumerName)

	total := ls.Objects
	bound := uint64(cfg.MaxBacklog + cfg.MaxPendingAcks + pacingEvery)
	t.Logf("peak backlog %d of %d records (bound %d)", peak, total, bound)
	require.Greater(t, uint64(total), 2*bound, "the sync is large enough for the bound to matter")
	require.LessOrEqual(t, peak, bound, "the sync ran ahead of the normalizer")
}

// A sync past LargeSyncAfter sends the rest of its records, and its
// reconcile marker, to the bulk lane, paced by that lane's consumer; the
// records it sent first stay in the sync lane. Everything is stored.
func TestLargeSyncsRecordsGoToTheBulkLane(t *testing.T) {
	cfg := newTestConfig()
	cfg.BacklogConsumer, cfg.BulkConsumer = normalizer.ConsumerName, normalizer.BulkConsumerName
	cfg.MaxBacklog, cfg.LargeSyncAfter, cfg.LargeSyncBacklog, cfg.MaxPendingAcks = 200, 300, 50, 16
	h, c, _, peak := pacedFullSync(t, cfg, normalizer.BulkConsumerName)

	raw, err := h.js.Stream(h.ctx, broker.StreamRaw)
	require.NoError(t, err)
	info, err := raw.Info(h.ctx, jetstream.WithSubjectFilter("raw.>"))
	require.NoError(t, err)
	syncs, bulk := info.State.Subjects[broker.RawSubject("jira", c.ID, broker.SourceSync)], info.State.Subjects[broker.RawSubject("jira", c.ID, broker.SourceBulk)]
	require.Equal(t, uint64(cfg.LargeSyncAfter), syncs, "its first records")
	require.Greater(t, bulk, uint64(4*cfg.LargeSyncAfter), "the rest")
	bound := uint64(cfg.LargeSyncBacklog + cfg.MaxPendingAcks + cfg.LargeSyncBacklog/4)
	t.Logf("peak bulk backlog %d of %d records (bound %d)", peak, bulk, bound)
	require.LessOrEqual(t, peak, bound, "the large sync ran ahead of the bulk lane")
}

// pacedFullSync runs org-a's full sync of 120 issues with 12 comments each
// under cfg, on a platform whose normalizer has one sync worker, and
// reports the highest backlog of consumer meanwhile. Everything is stored.
func pacedFullSync(t *testing.T, cfg testConfig, consumer string) (*harness, *store.Connection, *store.SyncState, uint64) {
	h := newHarness(t, jirasim.Options{Seed: 5, Projects: 2, IssuesPerProject: 60, CommentsPerIssue: 12, Users: 5, Groups: 2},
		func(h *harness) { h.embedded, h.normalizerWorkers = true, 1 })
	require.Eventually(t, func() bool {
		_, err := h.js.Consumer(h.ctx, broker.StreamRaw, consumer)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	c := h.connect("org-a", connections.Options{})
	peak, stop := peakBacklog(h, consumer)
	h.startWorker("w1", 5*time.Second, cfg)
	ls := h.waitFull(c.ID, "", 60*time.Second)
	stop()
	require.Equal(t, store.SyncCompleted, ls.Status, ls.LastError)
	h.drained(60 * time.Second)
	require.Equal(t, 120, h.count(c, "ticket", false))
	require.Equal(t, 120*12, h.count(c, "comment", false))
	return h, c, ls, peak()
}

// peakBacklog samples a consumer's backlog (pending and unacknowledged)
// every 2 ms until stop, and reports its peak.
func peakBacklog(h *harness, consumer string) (peak func() uint64, stop func()) {
	var highest atomic.Uint64
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			cons, err := h.js.Consumer(h.ctx, broker.StreamRaw, consumer)
			if err != nil {
				continue
			}
			info := cons.CachedInfo()
			if n := info.NumPending + uint64(info.NumAckPending); n > highest.Load() {
				highest.Store(n)
			}
		}
	}()
	return highest.Load, func() { close(done) }
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
	smallN, between := largeThenSmall(t, func(cfg *Config) {
		cfg.LargeSyncAfter, cfg.LargeSyncBacklog = 600, 20
	})
	require.Less(t, between, smallN/3, "the small sync shared the lane with the large one instead of going first")
}

// A large sync keeps only LargeSyncYield records ahead of the normalizer
// while a smaller one publishes, however large its own window.
func TestLargeSyncGivesWayToASmallOne(t *testing.T) {
	smallN, between := largeThenSmall(t, func(cfg *Config) {
		cfg.LargeSyncAfter, cfg.LargeSyncBacklog, cfg.LargeSyncYield = 600, 200, 2
	})
	require.Less(t, between, smallN/20, "the large sync kept its window while the small one published")
}

// largeThenSmall starts a small sync once a large one has published past
// LargeSyncAfter, and reads how many records the small one published and
// how many of the large one's lie between its first and last in RAW.
func largeThenSmall(t *testing.T, configure func(*Config)) (smallN, between int) {
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
	configure(&cfg.Config)
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

	smallSubject := broker.RawSubject("jira", small.ID, broker.SourceSync)
	oc, err := h.js.OrderedConsumer(h.ctx, broker.StreamRaw, jetstream.OrderedConsumerConfig{FilterSubjects: []string{largeSubject, smallSubject}})
	require.NoError(t, err)
	pendingLarge := 0
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
	return smallN, between
}

// A large sync gives way while a small one publishes, and after that while
// the small one's records are not yet stored (past the ack floor); an
// ended small sync is forgotten once its records are stored, or after
// storedWithin however slow the normalizer is.
func TestGivingWayLastsUntilTheSmallSyncIsStored(t *testing.T) {
	small := &smallSyncs{m: map[*pacer]*smallSync{}}
	pc := func() *pacer {
		return &pacer{max: 100, largeAfter: 10, largeMax: 50, yieldMax: 5, small: small}
	}
	big, little := pc(), pc()
	start := time.Now()
	at := func(d time.Duration) time.Time { return start.Add(d) }

	require.False(t, small.ahead(big, at(0), 0), "no small sync")
	for sent := 1; sent <= 3; sent++ {
		little.note(sent)
		little.acked(sent, uint64(100+sent))
	}
	require.True(t, small.ahead(big, time.Now(), 200), "it published a moment ago")
	require.False(t, small.ahead(little, time.Now(), 200), "a sync does not give way to itself")
	require.True(t, small.ahead(big, time.Now().Add(time.Minute), 102), "its record 103 is not stored")
	require.False(t, small.ahead(big, time.Now().Add(time.Minute), 103), "stored, and quiet")

	big.floor.Store(100)
	require.Equal(t, uint64(100), big.window(5), "not yet large: the whole window")
	require.True(t, big.givingWay(11))
	require.Equal(t, uint64(5), big.window(11))

	small.end(little, at(0))
	require.True(t, small.ahead(big, at(storedWithin/2), 102), "ended, records not stored")
	require.Len(t, small.m, 1)
	require.False(t, small.ahead(big, at(storedWithin+time.Second), 102), "ended too long ago")
	require.Empty(t, small.m, "forgotten")

	// A sync that becomes large ends its small part.
	other := pc()
	for sent := 1; sent <= 11; sent++ {
		other.note(sent)
	}
	require.True(t, small.m[other].ended)
}
