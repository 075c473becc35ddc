package normalizer

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

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
