package store

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ttlCache caches lookups by key for a TTL. Misses (ErrNotFound) are not
// cached, so something created a moment ago is found at once. When the
// lookup fails otherwise, a stale entry is served rather than the error:
// during a store outage the receiver keeps accepting deliveries for known
// connections (they only need JetStream).
type ttlCache[V any] struct {
	ttl    time.Duration
	now    func() time.Time
	lookup func(ctx context.Context, key string) (V, error)
	mu     sync.Mutex
	m      map[string]cached[V]
}

type cached[V any] struct {
	v  V
	at time.Time
}

func newTTLCache[V any](lookup func(ctx context.Context, key string) (V, error), ttl time.Duration, now func() time.Time) *ttlCache[V] {
	if now == nil {
		now = time.Now
	}
	return &ttlCache[V]{ttl: ttl, now: now, lookup: lookup, m: map[string]cached[V]{}}
}

func (c *ttlCache[V]) get(ctx context.Context, key string) (V, error) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.v, nil
	}
	v, err := c.lookup(ctx, key)
	if err != nil {
		if ok && !errors.Is(err, ErrNotFound) {
			return e.v, nil
		}
		return v, err
	}
	c.mu.Lock()
	c.m[key] = cached[V]{v: v, at: c.now()}
	c.mu.Unlock()
	return v, nil
}

// ConnectionCache spares a store read per message or request: connections
// change rarely, so a change (a new mapping, a deletion) may take up to the
// TTL to be seen by a running service.
type ConnectionCache struct{ c *ttlCache[*Connection] }

// NewConnectionCache caches lookup's answers for ttl (see ttlCache).
func NewConnectionCache(lookup func(ctx context.Context, id string) (*Connection, error), ttl time.Duration, now func() time.Time) *ConnectionCache {
	return &ConnectionCache{c: newTTLCache(lookup, ttl, now)}
}

// LookupConnection returns the cached connection or reads it.
func (c *ConnectionCache) LookupConnection(ctx context.Context, id string) (*Connection, error) {
	return c.c.get(ctx, id)
}

// SiteCache caches the connections of each vendor site (by cloud id), which
// the receiver needs for every delivery to fan it out.
type SiteCache struct{ c *ttlCache[[]*Connection] }

// NewSiteCache caches find's answers per cloud id for ttl.
func NewSiteCache(find func(ctx context.Context, q ConnectionQuery) ([]*Connection, error), ttl time.Duration, now func() time.Time) *SiteCache {
	return &SiteCache{c: newTTLCache(func(ctx context.Context, cloudID string) ([]*Connection, error) {
		return find(ctx, ConnectionQuery{CloudID: cloudID})
	}, ttl, now)}
}

// SiteConnections returns the connections of the site, cached.
func (c *SiteCache) SiteConnections(ctx context.Context, cloudID string) ([]*Connection, error) {
	return c.c.get(ctx, cloudID)
}
