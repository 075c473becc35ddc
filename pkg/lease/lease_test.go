package lease_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/lease"
)

func js(t *testing.T) jetstream.JetStream { return brokertest.Start(t).JetStream() }

func TestOneHolderAtATime(t *testing.T) {
	ctx := context.Background()
	j := js(t)
	a, err := lease.Open(ctx, j, "leases", "a", time.Minute, 1)
	require.NoError(t, err)
	b, err := lease.Open(ctx, j, "leases", "b", time.Minute, 1)
	require.NoError(t, err)

	la, err := a.Acquire(ctx, "conn-1")
	require.NoError(t, err)
	_, err = b.Acquire(ctx, "conn-1")
	require.ErrorIs(t, err, lease.ErrHeld)
	holder, err := b.Holder(ctx, "conn-1")
	require.NoError(t, err)
	require.Equal(t, "a", holder)
	_, err = b.Acquire(ctx, "conn-2")
	require.NoError(t, err, "leases are per key")

	require.NoError(t, la.Renew(ctx))
	require.NoError(t, la.Release(ctx))
	lb, err := b.Acquire(ctx, "conn-1")
	require.NoError(t, err, "released leases can be taken")
	require.ErrorIs(t, la.Renew(ctx), lease.ErrLost, "the old holder must learn it lost the lease")
	require.NoError(t, la.Release(ctx), "releasing a lost lease must not free the new holder's")
	_, err = a.Acquire(ctx, "conn-1")
	require.ErrorIs(t, err, lease.ErrHeld)
	require.NoError(t, lb.Release(ctx))
}

func TestExpiredLeasePassesOn(t *testing.T) {
	ctx := context.Background()
	j := js(t)
	a, err := lease.Open(ctx, j, "short", "a", time.Second, 1)
	require.NoError(t, err)
	b, err := lease.Open(ctx, j, "short", "b", time.Second, 1)
	require.NoError(t, err)
	_, err = a.Acquire(ctx, "k") // a "dies": never renews
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = b.AcquireWait(wctx, "k", 100*time.Millisecond)
	require.NoError(t, err, "a dead holder's lease must expire")
}

func TestConcurrentAcquireHasOneWinner(t *testing.T) {
	ctx := context.Background()
	j := js(t)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		l, err := lease.Open(ctx, j, "race", string(rune('a'+i)), time.Minute, 1)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.Acquire(ctx, "k"); err == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, 1, wins.Load())
}
