package normalizer

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
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
	e.get(itsm.KindTicket, ticketID("1"))
}

// A shutdown that arrives while the consumer is still being created is a
// clean stop (the platform's shutdown must not report it as a failure),
// but a consumer that cannot be created while running is an error.
func TestRunStoppedDuringStartIsClean(t *testing.T) {
	e := newEnv(t)
	n, err := New(Config{Workers: 1}, e.js, e.st, zap.NewNop(), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, n.Run(ctx))

	require.NoError(t, e.js.DeleteStream(context.Background(), broker.StreamRaw))
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.ErrorContains(t, n.Run(ctx), "normalizer consumer")
}
