// Package lease gives one holder at a time a named lease across every
// replica, on a NATS KV bucket whose TTL is the lease's life: a holder that
// dies simply stops renewing, and the key expires for the next one.
package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrHeld: someone else holds the lease.
	ErrHeld = errors.New("lease held by another owner")
	// ErrLost: the lease expired or was taken over; stop the work it guarded.
	ErrLost = errors.New("lease lost")
)

// Leases is one bucket of leases with one TTL.
type Leases struct {
	kv    jetstream.KeyValue
	owner string
	ttl   time.Duration
}

// Open binds the bucket, or creates (or updates) it when it is missing or
// its TTL is not ttl. Binding needs only read access to the bucket's stream:
// the services' NATS users may not create streams (the normalizer's creates
// the platform's buckets). owner names this process in the lease value, for
// operators looking at who holds what.
func Open(ctx context.Context, js jetstream.JetStream, bucket, owner string, ttl time.Duration, replicas int) (*Leases, error) {
	if kv, err := js.KeyValue(ctx, bucket); err == nil {
		if st, err := kv.Status(ctx); err == nil && st.TTL() == ttl {
			return &Leases{kv: kv, owner: owner, ttl: ttl}, nil
		}
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, TTL: ttl, History: 1, Replicas: replicas, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", bucket, err)
	}
	return &Leases{kv: kv, owner: owner, ttl: ttl}, nil
}

// TTL is how long a lease lives without renewal.
func (l *Leases) TTL() time.Duration { return l.ttl }

// Lease is a held lease.
type Lease struct {
	l   *Leases
	key string
	rev uint64
}

// Acquire takes the lease or returns ErrHeld at once.
func (l *Leases) Acquire(ctx context.Context, key string) (*Lease, error) {
	rev, err := l.kv.Create(ctx, key, []byte(l.owner))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("%s: %w", key, ErrHeld)
	}
	if err != nil {
		return nil, fmt.Errorf("acquire lease %s: %w", key, err)
	}
	return &Lease{l: l, key: key, rev: rev}, nil
}

// AcquireWait retries Acquire every poll until it succeeds or ctx ends.
func (l *Leases) AcquireWait(ctx context.Context, key string, poll time.Duration) (*Lease, error) {
	for {
		le, err := l.Acquire(ctx, key)
		if !errors.Is(err, ErrHeld) {
			return le, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for lease %s: %w", key, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// Holder tells who holds a lease now ("" if nobody).
func (l *Leases) Holder(ctx context.Context, key string) (string, error) {
	e, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lease %s: %w", key, err)
	}
	return string(e.Value()), nil
}

// Renew extends the lease by a full TTL; ErrLost if it is no longer ours.
func (le *Lease) Renew(ctx context.Context) error {
	rev, err := le.l.kv.Update(ctx, le.key, []byte(le.l.owner), le.rev)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) || errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%s: %w", le.key, ErrLost)
		}
		return fmt.Errorf("renew lease %s: %w", le.key, err)
	}
	le.rev = rev
	return nil
}

// Release gives the lease up, unless it has already passed to someone else.
func (le *Lease) Release(ctx context.Context) error {
	err := le.l.kv.Delete(ctx, le.key, jetstream.LastRevision(le.rev))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) {
			return nil // expired and maybe re-taken: nothing of ours to release
		}
		return fmt.Errorf("release lease %s: %w", le.key, err)
	}
	return nil
}
