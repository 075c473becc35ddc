package normalizer

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// Deployments before this version created the consumer with the server
// giving up after MaxDeliver deliveries (dropping the message); starting
// must turn that off, since the normalizer now dead-letters by itself.
func TestStartUpdatesAnExistingConsumer(t *testing.T) {
	e := newEnv(t)
	_, err := e.js.CreateOrUpdateConsumer(context.Background(), broker.StreamRaw, jetstream.ConsumerConfig{
		Durable: ConsumerName, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: 5,
		FilterSubject: "raw.>", MaxAckPending: 8192})
	require.NoError(t, err)
	e.start(Config{}, nil, nil)
	e.publishWebhook(issueBody(t, "1", time.Now(), "x"))
	e.waitIdle(5 * time.Second)
	c, err := e.js.Consumer(context.Background(), broker.StreamRaw, ConsumerName)
	require.NoError(t, err)
	require.Equal(t, -1, c.CachedInfo().Config.MaxDeliver)
	require.Equal(t, syncFilter, c.CachedInfo().Config.FilterSubject, "the old consumer became the sync lane")
	e.get(itsm.KindTicket, ticketID("1"))
}

// Upgrading from the single consumer: the live lane starts where the old
// consumer's ack floor stood, so a webhook it had not taken yet is still
// processed, and one it had finished is not taken again.
func TestUpgradeFromOneConsumerLosesNoLiveDelivery(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old, err := e.js.CreateOrUpdateConsumer(ctx, broker.StreamRaw, jetstream.ConsumerConfig{
		Durable: ConsumerName, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: -1,
		FilterSubject: "raw.>", MaxAckPending: 8192})
	require.NoError(t, err)
	// The old normalizer finished the first delivery, then stopped.
	e.publishWebhook(issueBody(t, "1", time.Now(), "done before the upgrade"))
	batch, err := old.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	for m := range batch.Messages() {
		require.NoError(t, m.DoubleAck(ctx))
	}
	// Two more arrived while it was down.
	e.publishWebhook(issueBody(t, "2", time.Now(), "after"))
	var hook struct {
		Issue json.RawMessage `json:"issue"`
	}
	require.NoError(t, json.Unmarshal(issueBody(t, "3", time.Now(), "sync"), &hook))
	e.publishSync(SyncRecord{Type: "issue", ObservedAt: time.Now(), Record: hook.Issue})

	e.start(Config{}, nil, nil)
	e.waitIdle(10 * time.Second)
	e.get(itsm.KindTicket, ticketID("2"))
	e.get(itsm.KindTicket, ticketID("3"))
	_, err = e.st.Get(ctx, testOrg, itsm.KindTicket, ticketID("1"))
	require.ErrorIs(t, err, store.ErrNotFound, "what the old consumer acked is not delivered again")
	live, err := e.js.Consumer(ctx, broker.StreamRaw, LiveConsumerName)
	require.NoError(t, err)
	require.Equal(t, liveFilter, live.CachedInfo().Config.FilterSubject)
}

// Upgrading from two lanes: the bulk lane's consumer is created and takes
// the bulk records a newer backfill worker published before the upgrade,
// and the other lanes carry on from their ack floors.
func TestUpgradeFromTwoLanesAddsTheBulkLane(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var hook struct {
		Issue json.RawMessage `json:"issue"`
	}
	require.NoError(t, json.Unmarshal(issueBody(t, "1", time.Now(), "synced before the upgrade"), &hook))
	e.publishSync(SyncRecord{Type: "issue", ObservedAt: time.Now(), Record: hook.Issue})
	e.publishWebhook(issueBody(t, "2", time.Now(), "delivered before the upgrade"))
	// The older normalizer's lanes finished both, then it stopped.
	for _, l := range []struct{ name, filter string }{{ConsumerName, syncFilter}, {LiveConsumerName, liveFilter}} {
		c, err := e.js.CreateOrUpdateConsumer(ctx, broker.StreamRaw, jetstream.ConsumerConfig{
			Durable: l.name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: -1,
			FilterSubject: l.filter, MaxAckPending: 4096})
		require.NoError(t, err)
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		n := 0
		for m := range batch.Messages() {
			require.NoError(t, m.DoubleAck(ctx))
			n++
		}
		require.Equal(t, 1, n, l.name)
	}
	// A newer backfill worker's large sync went on meanwhile.
	user := fixture(t, "rest/user_cloud_v3_01.json")
	for i := range 3 {
		rec := edit(t, user, func(m map[string]any) { m["accountId"] = "bulk-" + strconv.Itoa(i) })
		e.publishSyncAs(broker.SourceBulk, SyncRecord{Type: "user", ObservedAt: time.Now(), Record: rec})
	}

	e.start(Config{}, nil, nil)
	e.waitIdle(10 * time.Second)
	for i := range 3 {
		e.get(itsm.KindUser, itsm.ObjectID(testConn, itsm.KindUser, "bulk-"+strconv.Itoa(i)))
	}
	for _, id := range []string{"1", "2"} {
		_, err := e.st.Get(ctx, testOrg, itsm.KindTicket, ticketID(id))
		require.ErrorIs(t, err, store.ErrNotFound, "what the older lanes acked is not delivered again")
	}
	bulk, err := e.js.Consumer(ctx, broker.StreamRaw, BulkConsumerName)
	require.NoError(t, err)
	require.Equal(t, bulkFilter, bulk.CachedInfo().Config.FilterSubject)
}

// A shutdown that arrives while the consumer is still being created is a
// clean stop (the platform's shutdown must not report it as a failure),
// but a consumer that cannot be created while running is an error.
func TestRunStoppedDuringStartIsClean(t *testing.T) {
	e := newEnv(t)
	n, err := New(Config{Workers: 1, Mappers: jiraMappers()}, e.js, e.st, zap.NewNop(), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, n.Run(ctx))

	require.NoError(t, e.js.DeleteStream(context.Background(), broker.StreamRaw))
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.ErrorContains(t, n.Run(ctx), "normalizer consumer")
}

// A live delivery does not queue behind a sync's backlog: with thousands of
// sync records waiting for the one sync worker, the webhook's ticket is
// stored while most of them still wait.
func TestLiveDeliveriesOvertakeASyncBacklog(t *testing.T) {
	e := newEnv(t)
	user := fixture(t, "rest/user_cloud_v3_01.json")
	const backlog = 3000
	for i := range backlog {
		rec := edit(t, user, func(m map[string]any) { m["accountId"] = "acc-" + strconv.Itoa(i) })
		e.publishSync(SyncRecord{Type: "user", ObservedAt: time.Now(), Record: rec})
	}
	e.start(Config{Workers: 1, LiveWorkers: 1}, nil, nil)
	e.publishWebhook(issueBody(t, "77", time.Now(), "live"))
	ctx := context.Background()
	require.Eventually(t, func() bool {
		_, err := e.st.Get(ctx, testOrg, itsm.KindTicket, ticketID("77"))
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
	c, err := e.js.Consumer(ctx, broker.StreamRaw, ConsumerName)
	require.NoError(t, err)
	info := c.CachedInfo()
	require.Greater(t, info.NumPending+uint64(info.NumAckPending), uint64(backlog/2),
		"the live delivery was stored before half the sync backlog")
	e.waitIdle(60 * time.Second)
}

// Another sync's records, and live deliveries, do not queue behind a large
// sync's backlog in the bulk lane: while they are in work, the bulk lane
// keeps only a few of its workers busy (with 16 workers a lane, it stored
// about a tenth of what the sync lane did; as much without giving way),
// and it keeps moving.
func TestBulkLaneGivesWay(t *testing.T) {
	user := fixture(t, "rest/user_cloud_v3_01.json")
	const ahead, backlog = 400, 3000
	for _, tc := range []struct {
		lane    string
		publish func(e *env, i int)
		stored  func(i int) (itsm.Kind, string)
	}{
		{ConsumerName, func(e *env, i int) {
			rec := edit(t, user, func(m map[string]any) { m["accountId"] = "small-" + strconv.Itoa(i) })
			e.publishSync(SyncRecord{Type: "user", ObservedAt: time.Now(), Record: rec})
		}, func(i int) (itsm.Kind, string) {
			return itsm.KindUser, itsm.ObjectID(testConn, itsm.KindUser, "small-"+strconv.Itoa(i))
		}},
		{LiveConsumerName, func(e *env, i int) {
			e.publishWebhook(issueBody(t, strconv.Itoa(1000+i), time.Now(), "live"))
		}, func(i int) (itsm.Kind, string) { return itsm.KindTicket, ticketID(strconv.Itoa(1000 + i)) }},
	} {
		t.Run(tc.lane, func(t *testing.T) {
			e := newEnv(t)
			for i := range ahead {
				tc.publish(e, i)
			}
			for i := range backlog {
				rec := edit(t, user, func(m map[string]any) { m["accountId"] = "bulk-" + strconv.Itoa(i) })
				e.publishSyncAs(broker.SourceBulk, SyncRecord{Type: "user", ObservedAt: time.Now(), Record: rec})
			}
			e.start(Config{Workers: 16, LiveWorkers: 16}, nil, nil)
			ctx := context.Background()
			lane := func(name string) jetstream.Consumer {
				var c jetstream.Consumer
				require.Eventually(t, func() bool {
					var err error
					c, err = e.js.Consumer(ctx, broker.StreamRaw, name)
					return err == nil
				}, 10*time.Second, time.Millisecond)
				return c
			}
			first, bulk := lane(tc.lane), lane(BulkConsumerName)
			require.Eventually(t, func() bool {
				info, err := first.Info(ctx)
				return err == nil && info.NumPending == 0 && info.NumAckPending == 0
			}, 20*time.Second, time.Millisecond)
			info, err := bulk.Info(ctx)
			require.NoError(t, err)
			done := backlog - int(info.NumPending) - info.NumAckPending
			require.Less(t, done, ahead/2, "bulk records stored while the %s lane's %d were", tc.lane, ahead)
			e.waitIdle(60 * time.Second)
			for _, i := range []int{0, ahead - 1} {
				kind, id := tc.stored(i)
				require.NotNil(t, e.get(kind, id), id)
			}
			for _, id := range []string{"bulk-0", "bulk-2999"} {
				require.NotNil(t, e.get(itsm.KindUser, itsm.ObjectID(testConn, itsm.KindUser, id)), id)
			}
		})
	}
}

// countingJS is a real JetStream connection that counts the event
// publishes and consumer lookups made through it.
type countingJS struct {
	jetstream.JetStream
	publishes, consumers atomic.Int64
}

func (c *countingJS) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	c.publishes.Add(1)
	return c.JetStream.PublishMsg(ctx, m, opts...)
}

func (c *countingJS) Consumer(ctx context.Context, stream, name string) (jetstream.Consumer, error) {
	c.consumers.Add(1)
	return c.JetStream.Consumer(ctx, stream, name)
}

// With a live lane's own connection, live deliveries are consumed and
// their events published on it, and a sync's records never use it.
func TestLiveLaneUsesItsOwnConnection(t *testing.T) {
	e := newEnv(t)
	liveJS, err := jetstream.New(e.broker.Conn())
	require.NoError(t, err)
	live := &countingJS{JetStream: liveJS}
	e.start(Config{Workers: 2, LiveWorkers: 1, LiveJS: live}, nil, nil)
	require.Eventually(t, func() bool { return live.consumers.Load() == 1 }, 10*time.Second, 5*time.Millisecond,
		"the live lane's consumer is bound to its connection")

	user := fixture(t, "rest/user_cloud_v3_01.json")
	e.publishSync(SyncRecord{Type: "user", ObservedAt: time.Now(), Record: user})
	e.waitIdle(10 * time.Second)
	require.Zero(t, live.publishes.Load(), "a sync record's event went through the live lane's connection")
	synced := len(e.events())
	require.Positive(t, synced)

	e.publishWebhook(issueBody(t, "78", time.Now(), "live"))
	e.waitIdle(10 * time.Second)
	require.Equal(t, int64(len(e.events())-synced), live.publishes.Load(),
		"every event of the live delivery went through the live lane's connection")
	require.Positive(t, live.publishes.Load())
}
