package broker_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/lease"
)

// client is a TCP connection as a user that records the server's
// asynchronous errors (permission violations arrive that way).
type client struct {
	nc *nats.Conn
	js jetstream.JetStream
	mu sync.Mutex
	// errs are the server's asynchronous errors, in order.
	errs []string
}

func dial(t *testing.T, b *brokertest.Broker, user string) *client {
	t.Helper()
	c := &client{}
	opts := append(broker.ClientOptions(user, b.Users[user]), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.errs = append(c.errs, err.Error())
	}))
	nc, err := nats.Connect(b.ClientURL(), opts...)
	require.NoError(t, err, "connect as %s", user)
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js, err = jetstream.New(nc)
	require.NoError(t, err)
	return c
}

// violation waits for a permission violation naming subject.
func (c *client) violation(t *testing.T, op, subject string) {
	t.Helper()
	want := "permissions violation for " + strings.ToLower(op) + ` to "` + strings.ToLower(subject) + `"`
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, e := range c.errs {
			if strings.Contains(strings.ToLower(e), want) {
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("no permissions violation for %s to %q; server errors: %v", op, subject, c.errs)
}

func (c *client) noViolations(t *testing.T) {
	t.Helper()
	require.NoError(t, c.nc.Flush())
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Empty(t, c.errs)
}

// publishJS publishes through JetStream and waits at most a second for the
// stream's ack: a refused publish is never acked.
func publishJS(c *client, subject string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := c.js.Publish(ctx, subject, []byte(`{}`))
	return err
}

func short() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

func TestNATSRefusesClientsWithoutCredentials(t *testing.T) {
	b := brokertest.Start(t)
	_, err := nats.Connect(b.ClientURL())
	require.ErrorIs(t, err, nats.ErrAuthorization, "no credentials")
	_, err = nats.Connect(b.ClientURL(), nats.UserInfo(broker.UserReceiver, "not-the-password-0123456789"))
	require.ErrorIs(t, err, nats.ErrAuthorization, "wrong password")
	_, err = nats.Connect(b.ClientURL(), nats.UserInfo("mallory", b.Users[broker.UserAdmin]))
	require.ErrorIs(t, err, nats.ErrAuthorization, "unknown user")

	_, err = broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: t.TempDir()})
	require.ErrorContains(t, err, "no users", "an embedded server without users is refused")
	_, err = broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: t.TempDir(),
		Users: broker.Users{broker.UserReceiver: "short"}})
	require.ErrorContains(t, err, "ITSM_NATS_RECEIVER_PASSWORD")
	require.NotContains(t, err.Error(), "short", "the password is not echoed")
}

func TestReceiverUserPublishesWebhooksOnly(t *testing.T) {
	b := brokertest.Start(t)
	c := dial(t, b, broker.UserReceiver)
	require.NoError(t, publishJS(c, broker.RawSubject("jira", "c1", broker.SourceWebhook)))

	// A sync record would let it tombstone a tenant's data through a forged
	// reconcile marker; ITSM and DLQ are the normalizer's.
	for _, subj := range []string{broker.RawSubject("jira", "c1", broker.SourceSync), broker.RawSubject("jira", "c1", broker.SourceBulk), "itsm.ticket.updated", "dlq.raw.jira.c1.webhook", "raw.jira.c1.webhook.extra"} {
		require.Error(t, publishJS(c, subj), subj)
		c.violation(t, "publish", subj)
	}
	// It cannot read events, nor another user's replies.
	_, err := c.nc.SubscribeSync("itsm.>")
	require.NoError(t, err)
	c.violation(t, "subscription", "itsm.>")
	_, err = c.nc.SubscribeSync("_INBOX_normalizer.>")
	require.NoError(t, err)
	c.violation(t, "subscription", "_INBOX_normalizer.>")
	denied, stop := context.WithTimeout(context.Background(), time.Second)
	defer stop()
	_, err = c.js.CreateOrUpdateConsumer(denied, broker.StreamRaw, jetstream.ConsumerConfig{Durable: "spy"})
	require.Error(t, err, "no consumers on RAW")
	ctx, cancel := short()
	defer cancel()

	// What the receiver process does besides publishing works, once the
	// normalizer made the buckets: its leases and the sync requests it
	// records, stream information for readiness.
	require.NoError(t, broker.EnsureBuckets(ctx, b.JetStreamAs(broker.UserNormalizer), 1))
	fresh := dial(t, b, broker.UserReceiver)
	require.NoError(t, broker.CheckStreams(ctx, fresh.js))
	leases, err := lease.Open(ctx, fresh.js, broker.KVLeases, "test", broker.LeaseTTL, 1)
	require.NoError(t, err)
	le, err := leases.Acquire(ctx, "refresh-c1")
	require.NoError(t, err)
	require.NoError(t, le.Release(ctx))
	kv, err := fresh.js.KeyValue(ctx, broker.KVSyncRequests)
	require.NoError(t, err)
	_, err = kv.PutString(ctx, "c1", "full")
	require.NoError(t, err)
	_, err = kv.Create(ctx, "c2", []byte("incremental"))
	require.NoError(t, err)
	_, err = fresh.js.Stream(ctx, broker.StreamRaw)
	require.NoError(t, err)
	fresh.noViolations(t)

	// It cannot reconfigure a stream, not even its own buckets'.
	denied2, stop2 := context.WithTimeout(context.Background(), time.Second)
	defer stop2()
	_, err = c.js.UpdateKeyValue(denied2, jetstream.KeyValueConfig{Bucket: broker.KVLeases, TTL: time.Hour})
	require.Error(t, err)
	c.violation(t, "publish", "$JS.API.STREAM.UPDATE.KV_"+broker.KVLeases)
}

func TestBackfillUserPublishesSyncRecordsOnly(t *testing.T) {
	b := brokertest.Start(t)
	c := dial(t, b, broker.UserBackfill)
	require.NoError(t, publishJS(c, broker.RawSubject("jira", "c1", broker.SourceSync)))
	require.NoError(t, publishJS(c, broker.RawSubject("jira", "c1", broker.SourceBulk)), "a large sync's records")
	for _, subj := range []string{broker.RawSubject("jira", "c1", broker.SourceWebhook), "itsm.ticket.updated"} {
		require.Error(t, publishJS(c, subj), subj)
		c.violation(t, "publish", subj)
	}

	// Its buckets, which the normalizer made: sync leases, token leases, and
	// the requests it lists, watches and deletes.
	ctx, cancel := short()
	defer cancel()
	require.NoError(t, broker.EnsureBuckets(ctx, b.JetStreamAs(broker.UserNormalizer), 1))
	fresh := dial(t, b, broker.UserBackfill)
	for _, bucket := range []string{broker.KVSyncLeases, broker.KVLeases} {
		leases, err := lease.Open(ctx, fresh.js, bucket, "test", 30*time.Second, 1)
		require.NoError(t, err)
		le, err := leases.Acquire(ctx, "c1")
		require.NoError(t, err)
		require.NoError(t, le.Renew(ctx))
	}
	kv, err := fresh.js.KeyValue(ctx, broker.KVSyncRequests)
	require.NoError(t, err)
	w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.IgnoreDeletes())
	require.NoError(t, err)
	rev, err := kv.PutString(ctx, "c1", "full")
	require.NoError(t, err)
	select {
	case e := <-w.Updates():
		require.NotNil(t, e)
		require.Equal(t, "c1", e.Key())
	case <-ctx.Done():
		t.Fatal("the watch saw no request")
	}
	require.NoError(t, w.Stop())
	keys, err := kv.Keys(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"c1"}, keys)
	require.NoError(t, kv.Delete(ctx, "c1", jetstream.LastRevision(rev)))
	for _, name := range []string{broker.ConsumerNormalizer, broker.ConsumerNormalizerBulk} {
		_, err := fresh.js.Consumer(ctx, broker.StreamRaw, name)
		require.True(t, err == nil || errors.Is(err, jetstream.ErrConsumerNotFound), "pacing reads the normalizer's progress: %v", err)
	}
	fresh.noViolations(t)
}

func TestNormalizerUserConsumesRawAndPublishesEvents(t *testing.T) {
	b := brokertest.Start(t)
	admin := dial(t, b, broker.UserAdmin)
	require.NoError(t, publishJS(admin, broker.RawSubject("jira", "c1", broker.SourceWebhook)))
	require.NoError(t, publishJS(admin, broker.RawSubject("jira", "c1", broker.SourceSync)))

	c := dial(t, b, broker.UserNormalizer)
	ctx, cancel := short()
	defer cancel()
	require.NoError(t, broker.EnsureStreams(ctx, c.js, 1), "it owns the streams' configuration")
	require.NoError(t, broker.EnsureBuckets(ctx, c.js, 1), "and the KV buckets'")
	require.NoError(t, broker.EnsureBuckets(ctx, c.js, 1), "every start")
	cons, err := c.js.CreateOrUpdateConsumer(ctx, broker.StreamRaw, jetstream.ConsumerConfig{
		Durable: broker.ConsumerNormalizer, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "raw.>", MaxDeliver: -1})
	require.NoError(t, err)
	got := make(chan jetstream.Msg, 2)
	cc, err := cons.Consume(func(m jetstream.Msg) { got <- m })
	require.NoError(t, err)
	defer cc.Stop()
	for range 2 {
		select {
		case m := <-got:
			require.NoError(t, m.DoubleAck(ctx))
		case <-ctx.Done():
			t.Fatal("no RAW message consumed")
		}
	}
	_, err = cons.Info(ctx)
	require.NoError(t, err)
	for _, l := range []struct{ name, source string }{{broker.ConsumerNormalizerLive, broker.SourceWebhook}, {broker.ConsumerNormalizerBulk, broker.SourceBulk}} {
		_, err := c.js.CreateOrUpdateConsumer(ctx, broker.StreamRaw, jetstream.ConsumerConfig{
			Durable: l.name, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "raw.*.*." + l.source, MaxDeliver: -1})
		require.NoError(t, err, "its %s lane", l.name)
	}
	require.NoError(t, publishJS(c, "itsm.ticket.updated"))
	require.NoError(t, publishJS(c, broker.DLQSubject("raw.jira.c1.webhook")))
	c.noViolations(t)

	// It cannot inject vendor records.
	require.Error(t, publishJS(c, broker.RawSubject("jira", "c1", broker.SourceSync)))
	c.violation(t, "publish", "raw.jira.c1.sync")
	denied, stop := context.WithTimeout(context.Background(), time.Second)
	defer stop()
	_, err = c.js.CreateOrUpdateConsumer(denied, broker.StreamRaw, jetstream.ConsumerConfig{Durable: "other"})
	require.Error(t, err, "only its own consumer")
}

func TestSubscriberUserIsReadOnly(t *testing.T) {
	b := brokertest.Start(t)
	c := dial(t, b, broker.UserSubscriber)
	sub, err := c.nc.SubscribeSync("itsm.>")
	require.NoError(t, err)
	require.NoError(t, c.nc.Flush())
	norm := dial(t, b, broker.UserNormalizer)
	require.NoError(t, publishJS(norm, "itsm.ticket.updated"))
	msg, err := sub.NextMsg(3 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "itsm.ticket.updated", msg.Subject)
	ctx, cancel := short()
	defer cancel()
	_, err = c.js.Stream(ctx, broker.StreamITSM)
	require.NoError(t, err)
	c.noViolations(t)

	for _, subj := range []string{"raw.jira.c1.webhook", "raw.jira.c1.sync", "itsm.ticket.updated", "dlq.x", "$KV.itsm_leases.x"} {
		require.Error(t, publishJS(c, subj), subj)
		c.violation(t, "publish", subj)
	}
	for _, subj := range []string{"raw.>", "dlq.>", "_INBOX_receiver.>", "$KV.>"} {
		_, err := c.nc.SubscribeSync(subj)
		require.NoError(t, err)
		c.violation(t, "subscription", subj)
	}
	denied, stop := context.WithTimeout(context.Background(), time.Second)
	defer stop()
	_, err = c.js.CreateOrUpdateConsumer(denied, broker.StreamITSM, jetstream.ConsumerConfig{Durable: "mine", DeliverSubject: "raw.jira.c1.sync"})
	require.Error(t, err, "a push consumer could deliver into RAW")
}
