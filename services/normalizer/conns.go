package normalizer

import (
	"context"
	"sync"
	"time"

	"github.com/itsmhub/itsm/pkg/store"
)

// connCache spares a store read per message: connections change rarely, and
// a mapping change taking a few seconds to apply is acceptable.
type connCache struct {
	ttl    time.Duration
	now    func() time.Time
	lookup func(ctx context.Context, id string) (*store.Connection, error)
	mu     sync.Mutex
	m      map[string]cachedConn
}

type cachedConn struct {
	conn *store.Connection
	at   time.Time
}

func (c *connCache) get(ctx context.Context, id string) (*store.Connection, error) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.conn, nil
	}
	conn, err := c.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.m[id] = cachedConn{conn: conn, at: c.now()}
	c.mu.Unlock()
	return conn, nil
}
