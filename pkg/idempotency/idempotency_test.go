package idempotency_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/idempotency"
)

func TestKeysClaimSettleAndStayScoped(t *testing.T) {
	b := brokertest.Start(t)
	ctx := context.Background()
	require.NoError(t, broker.EnsureBuckets(ctx, b.JetStreamAs(broker.UserNormalizer), 1))
	// The receiver's NATS user is the one that uses the bucket.
	keys := idempotency.New(b.JetStreamAs(broker.UserReceiver), broker.KVIdempotency)
	now := time.Now()

	prev, err := keys.Begin(ctx, "org-a", "k1", "fp1", now)
	require.NoError(t, err)
	require.Nil(t, prev, "a new key is claimed")
	prev, err = keys.Begin(ctx, "org-a", "k1", "fp1", now)
	require.NoError(t, err)
	require.Equal(t, idempotency.Pending, prev.State, "a retry while the first call runs (or died) sees it pending")
	require.Equal(t, "fp1", prev.Fingerprint)

	prev, err = keys.Begin(ctx, "org-b", "k1", "fp1", now)
	require.NoError(t, err)
	require.Nil(t, prev, "another organization's key of the same name is its own")

	require.NoError(t, keys.Finish(ctx, "org-a", "k1", idempotency.Record{Fingerprint: "fp1", Result: "ticket-1", ClaimedAt: now}))
	prev, err = keys.Begin(ctx, "org-a", "k1", "fp1", now)
	require.NoError(t, err)
	require.Equal(t, idempotency.Done, prev.State)
	require.Equal(t, "ticket-1", prev.Result)

	require.NoError(t, keys.Abandon(ctx, "org-b", "k1"))
	prev, err = keys.Begin(ctx, "org-b", "k1", "fp2", now)
	require.NoError(t, err)
	require.Nil(t, prev, "an abandoned claim can be made again")
	require.NotEqual(t, idempotency.Fingerprint([]byte("a"), []byte("b")), idempotency.Fingerprint([]byte("ab")))
}
