package store

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ConnectionCache spares a store read per message or request: connections
// change rarely, so a change (a new mapping, a deletion) may take up to the
// TTL to be seen by a running service.
type ConnectionCache struct {
	ttl    time.Duration
	now    func() time.Time
	lookup func(ctx context.Context, id string) (*Connection, error)
	mu     sync.Mutex
	m      map[string]cachedConn
}

type cachedConn struct {
	conn *Connection
	at   time.Time
}

// NewConnectionCache caches lookup's answers for ttl. Misses are not cached,
// so a connection created a moment ago is found at once. When the store
// fails, a stale entry is served rather than the error: during a store
// outage the receiver keeps accepting deliveries for known connections
// (they only need JetStream).
func NewConnectionCache(lookup func(ctx context.Context, id string) (*Connection, error), ttl time.Duration, now func() time.Time) *ConnectionCache {
	if now == nil {
		now = time.Now
	}
	return &ConnectionCache{ttl: ttl, now: now, lookup: lookup, m: map[string]cachedConn{}}
}

// LookupConnection returns the cached connection or reads it.
func (c *ConnectionCache) LookupConnection(ctx context.Context, id string) (*Connection, error) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.conn, nil
	}
	conn, err := c.lookup(ctx, id)
	if err != nil {
		if ok && !errors.Is(err, ErrNotFound) {
			return e.conn, nil
		}
		return nil, err
	}
	c.mu.Lock()
	c.m[id] = cachedConn{conn: conn, at: c.now()}
	c.mu.Unlock()
	return conn, nil
}
