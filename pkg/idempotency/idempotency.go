// Package idempotency remembers, durably and across replicas, what a
// request made under an Idempotency-Key did, so that a retried create never
// makes a second vendor ticket. Keys live in a JetStream KV bucket
// (broker.KVIdempotency) for broker.IdempotencyTTL.
//
// A key is claimed before the vendor is called (Begin) and settled after
// (Finish). A claim that is never settled (the process died mid-call, or the
// vendor's answer was lost) stays pending: a retry is told the outcome is
// unknown rather than risking a duplicate.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxKeyLen bounds a client's key.
const MaxKeyLen = 255

// State of a claimed key.
type State string

const (
	Pending State = "pending"
	Done    State = "done"
)

// Record is what is remembered under a key.
type Record struct {
	State State `json:"state"`
	// Fingerprint identifies the request body: the same key with another
	// request is a client error, not a retry.
	Fingerprint string `json:"fingerprint"`
	// Result is the caller's (for a ticket create: the ITSM ticket id).
	Result    string    `json:"result,omitempty"`
	ClaimedAt time.Time `json:"claimed_at"`
}

// Keys is the bucket of idempotency keys.
type Keys struct {
	js     jetstream.JetStream
	bucket string

	mu sync.Mutex
	kv jetstream.KeyValue
}

// New uses the bucket (the normalizer's NATS user creates it); it is bound
// on first use, so that a receiver may start before the normalizer.
func New(js jetstream.JetStream, bucket string) *Keys { return &Keys{js: js, bucket: bucket} }

func (k *Keys) bind(ctx context.Context) (jetstream.KeyValue, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kv == nil {
		kv, err := k.js.KeyValue(ctx, k.bucket)
		if err != nil {
			return nil, fmt.Errorf("idempotency bucket %s: %w", k.bucket, err)
		}
		k.kv = kv
	}
	return k.kv, nil
}

// storeKey scopes a client's key by organization and hashes it, so that any
// client string makes a valid KV key and one tenant's keys never meet
// another's.
func storeKey(scope, key string) string {
	h := sha256.Sum256([]byte(scope + "\x00" + key))
	return hex.EncodeToString(h[:])
}

// Begin claims key within scope for a request with this fingerprint. It
// answers nil when the claim is new (go ahead), else what was recorded
// before.
func (k *Keys) Begin(ctx context.Context, scope, key, fingerprint string, now time.Time) (*Record, error) {
	sk := storeKey(scope, key)
	b, err := json.Marshal(Record{State: Pending, Fingerprint: fingerprint, ClaimedAt: now.UTC()})
	if err != nil {
		return nil, err
	}
	kv, err := k.bind(ctx)
	if err != nil {
		return nil, err
	}
	_, err = kv.Create(ctx, sk, b)
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	e, err := kv.Get(ctx, sk)
	if err != nil {
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	var prev Record
	if err := json.Unmarshal(e.Value(), &prev); err != nil {
		return nil, fmt.Errorf("decode idempotency key: %w", err)
	}
	return &prev, nil
}

// Finish records the outcome of a claimed key.
func (k *Keys) Finish(ctx context.Context, scope, key string, rec Record) error {
	rec.State = Done
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	kv, err := k.bind(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, storeKey(scope, key), b); err != nil {
		return fmt.Errorf("record idempotency key: %w", err)
	}
	return nil
}

// Abandon releases a claim whose request certainly changed nothing (the
// vendor refused it), so that a corrected retry may use the key.
func (k *Keys) Abandon(ctx context.Context, scope, key string) error {
	kv, err := k.bind(ctx)
	if err != nil {
		return err
	}
	if err := kv.Delete(ctx, storeKey(scope, key)); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// Fingerprint hashes a request body.
func Fingerprint(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
