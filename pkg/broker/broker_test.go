package broker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
)

func TestEnsureStreamsIsIdempotentAndDedupes(t *testing.T) {
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), Users: broker.NewUsers()})
	require.NoError(t, err)
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect(broker.UserAdmin, "test")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	require.NoError(t, broker.EnsureStreams(ctx, js, 1))
	require.NoError(t, broker.EnsureStreams(ctx, js, 1), "second start must not fail")

	raw, err := js.Stream(ctx, broker.StreamRaw)
	require.NoError(t, err)
	info, err := raw.Info(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, info.Config.Duplicates, time.Hour, "Jira retries come up to ~30 min late")

	subj := broker.RawSubject("jira", "c1", broker.SourceWebhook)
	a1, err := js.Publish(ctx, subj, []byte(`{}`), jetstream.WithMsgID("c1:abc"))
	require.NoError(t, err)
	a2, err := js.Publish(ctx, subj, []byte(`{}`), jetstream.WithMsgID("c1:abc"))
	require.NoError(t, err)
	require.False(t, a1.Duplicate)
	require.True(t, a2.Duplicate)

	vendor, conn, source, err := broker.ParseRawSubject(subj)
	require.NoError(t, err)
	require.Equal(t, []string{"jira", "c1", "webhook"}, []string{vendor, conn, source})
	_, _, _, err = broker.ParseRawSubject("itsm.ticket.updated")
	require.Error(t, err)
}

func TestCollectorReportsStreamsAndBacklog(t *testing.T) {
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), Users: broker.NewUsers()})
	require.NoError(t, err)
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect(broker.UserAdmin, "test")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, broker.EnsureStreams(ctx, js, 1))
	_, err = js.CreateOrUpdateConsumer(ctx, broker.StreamRaw, jetstream.ConsumerConfig{Durable: "n", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "raw.*.*.sync"})
	require.NoError(t, err)
	_, err = js.CreateOrUpdateConsumer(ctx, broker.StreamRaw, jetstream.ConsumerConfig{Durable: "live", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "raw.*.*.webhook"})
	require.NoError(t, err)
	_, err = js.Publish(ctx, broker.RawSubject("jira", "c", "webhook"), []byte(`{}`))
	require.NoError(t, err)
	for range 3 {
		_, err = js.Publish(ctx, broker.RawSubject("jira", "c", "sync"), []byte(`{}`))
		require.NoError(t, err)
	}
	_, err = js.Publish(ctx, broker.DLQSubject("raw.jira.c.sync"), []byte(`{}`))
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	reg.MustRegister(broker.NewCollector(js, "live", "n", "missing"))
	want := `
# HELP itsm_dlq_messages Messages in the dead-letter stream.
# TYPE itsm_dlq_messages gauge
itsm_dlq_messages 1
# HELP itsm_normalizer_pending RAW messages not yet delivered to the normalizer (its lag), by consumer (lane).
# TYPE itsm_normalizer_pending gauge
itsm_normalizer_pending{consumer="live"} 1
itsm_normalizer_pending{consumer="n"} 3
`
	// A consumer's pending count follows a publish asynchronously.
	var err2 error
	require.Eventually(t, func() bool {
		err2 = testutil.GatherAndCompare(reg, strings.NewReader(want), "itsm_dlq_messages", "itsm_normalizer_pending")
		return err2 == nil
	}, 5*time.Second, 20*time.Millisecond, "%v", err2)
}
