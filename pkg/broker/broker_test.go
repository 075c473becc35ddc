package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
)

func TestEnsureStreamsIsIdempotentAndDedupes(t *testing.T) {
	e, err := broker.StartEmbedded(broker.EmbeddedConfig{Addr: "127.0.0.1:0", StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect("test")
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
