package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/store"
)

func TestConnectionCache(t *testing.T) {
	now := time.Unix(0, 0)
	calls := 0
	state := store.StateActive
	lookup := func(_ context.Context, id string) (*store.Connection, error) {
		calls++
		if id == "missing" {
			return nil, store.ErrNotFound
		}
		return &store.Connection{ID: id, State: state}, nil
	}
	c := store.NewConnectionCache(lookup, 5*time.Second, func() time.Time { return now })
	ctx := context.Background()

	got, err := c.LookupConnection(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, store.StateActive, got.State)
	state = store.StateDeleted
	got, _ = c.LookupConnection(ctx, "a")
	require.Equal(t, store.StateActive, got.State, "served from cache within the TTL")
	require.Equal(t, 1, calls)

	now = now.Add(6 * time.Second)
	got, _ = c.LookupConnection(ctx, "a")
	require.Equal(t, store.StateDeleted, got.State, "re-read after the TTL")
	require.Equal(t, 2, calls)

	_, err = c.LookupConnection(ctx, "missing")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, _ = c.LookupConnection(ctx, "missing")
	require.Equal(t, 4, calls, "misses are not cached")
}

func TestConnectionCacheServesStaleWhenTheStoreFails(t *testing.T) {
	now := time.Unix(0, 0)
	var storeDown bool
	c := store.NewConnectionCache(func(_ context.Context, id string) (*store.Connection, error) {
		if storeDown {
			return nil, errors.New("store down")
		}
		return &store.Connection{ID: id}, nil
	}, 5*time.Second, func() time.Time { return now })
	ctx := context.Background()
	_, err := c.LookupConnection(ctx, "known")
	require.NoError(t, err)

	storeDown = true
	now = now.Add(time.Minute) // the entry is stale
	got, err := c.LookupConnection(ctx, "known")
	require.NoError(t, err, "a known connection keeps working through a store outage")
	require.Equal(t, "known", got.ID)
	_, err = c.LookupConnection(ctx, "unknown")
	require.ErrorContains(t, err, "store down", "an unknown one reports the failure")
}

func TestSiteCache(t *testing.T) {
	now := time.Unix(0, 0)
	calls := 0
	c := store.NewSiteCache(func(_ context.Context, q store.ConnectionQuery) ([]*store.Connection, error) {
		calls++
		return []*store.Connection{{ID: "c-" + q.CloudID}}, nil
	}, 5*time.Second, func() time.Time { return now })
	for range 3 {
		got, err := c.SiteConnections(context.Background(), "cloud-1")
		require.NoError(t, err)
		require.Equal(t, "c-cloud-1", got[0].ID)
	}
	require.Equal(t, 1, calls, "one query per site per TTL, not per delivery")
	now = now.Add(6 * time.Second)
	_, _ = c.SiteConnections(context.Background(), "cloud-1")
	require.Equal(t, 2, calls)
}
