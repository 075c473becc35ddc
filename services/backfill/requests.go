package backfill

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/store"
)

// RequestBucket is the KV bucket of on-demand sync requests: key = connection
// id, value = kind. Every worker watches it; the one that starts (or is
// already running) a sync covering a request deletes it.
const RequestBucket = broker.KVSyncRequests

// requestTTL drops requests nobody took (a connection deleted meanwhile).
const requestTTL = broker.SyncRequestTTL

// ErrInvalidKind: RequestSync takes "full" or "incremental".
var ErrInvalidKind = errors.New("sync kind must be full or incremental")

var validKey = regexp.MustCompile(`^[-_=a-zA-Z0-9]+$`)

// Requester records sync requests (POST /v1/connections/{id}/sync, the end
// of OAuth) for the workers; it implements the SyncRequester interfaces of
// pkg/connections and the receiver. The bucket is opened on first use, so a
// Requester can be built before NATS is reachable.
type Requester struct {
	js jetstream.JetStream

	mu sync.Mutex
	kv jetstream.KeyValue
}

// NewRequester builds a requester on the platform's JetStream.
func NewRequester(js jetstream.JetStream) *Requester { return &Requester{js: js} }

func (r *Requester) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kv != nil {
		return r.kv, nil
	}
	// Bound when it exists: the services' NATS users may not create streams
	// (the normalizer's creates the bucket at start).
	kv, err := r.js.KeyValue(ctx, RequestBucket)
	if err != nil {
		kv, err = r.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: RequestBucket, History: 1, TTL: requestTTL, Storage: jetstream.FileStorage,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("sync request bucket: %w", err)
	}
	r.kv = kv
	return kv, nil
}

// RequestSync asks for a sync of the connection. A full request replaces a
// pending incremental one; an incremental request never downgrades a
// pending full one, but renews it: the pending request takes this one's
// revision, so that a sync that started before this request does not cover
// it (see covers).
func (r *Requester) RequestSync(ctx context.Context, connectionID string, kind store.SyncKind) error {
	if !kind.Valid() {
		return fmt.Errorf("%w: %q", ErrInvalidKind, kind)
	}
	if !validKey.MatchString(connectionID) {
		return fmt.Errorf("sync request: invalid connection id %q", connectionID)
	}
	kv, err := r.bucket(ctx)
	if err != nil {
		return err
	}
	if kind == store.SyncFull {
		_, err = kv.PutString(ctx, connectionID, string(kind))
	} else {
		err = renew(ctx, kv, connectionID, []byte(kind))
	}
	if err != nil {
		return fmt.Errorf("sync request: %w", err)
	}
	return nil
}

// renew creates the request, or writes the pending one again as it is
// (a compare-and-set, so that a full request written meanwhile is not
// downgraded), retrying while it changes under it.
func renew(ctx context.Context, kv jetstream.KeyValue, key string, value []byte) error {
	var err error
	for range 5 {
		if _, err = kv.Create(ctx, key, value); !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		var e jetstream.KeyValueEntry
		if e, err = kv.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // taken meanwhile: create it again
		} else if err != nil {
			return err
		}
		if _, err = kv.Update(ctx, key, e.Value(), e.Revision()); err == nil {
			return nil
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) {
			return err
		}
	}
	return err
}

// request is a pending request as a worker read it.
type request struct {
	kind store.SyncKind
	// rev is the request's revision in the bucket: revisions order the
	// requests and the syncs' starts and ends (checkpoint.RequestsFrom,
	// RequestsTo) without comparing clocks.
	rev uint64
}

// pending reads every pending request.
func (r *Requester) pending(ctx context.Context) (map[string]request, error) {
	kv, err := r.bucket(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return map[string]request{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]request, len(keys))
	for _, k := range keys {
		req, err := r.get(ctx, k)
		if err != nil {
			return out, err
		}
		if req.kind != "" {
			out[k] = req
		}
	}
	return out, nil
}

// get reads the connection's pending request (none: the zero request).
func (r *Requester) get(ctx context.Context, connID string) (request, error) {
	kv, err := r.bucket(ctx)
	if err != nil {
		return request{}, err
	}
	e, err := kv.Get(ctx, connID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return request{}, nil
	}
	if err != nil {
		return request{}, err
	}
	return request{kind: store.SyncKind(e.Value()), rev: e.Revision()}, nil
}

// revision is the bucket's last revision: every request made so far has a
// revision up to it.
func (r *Requester) revision(ctx context.Context) (uint64, error) {
	kv, err := r.bucket(ctx)
	if err != nil {
		return 0, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("sync request bucket status: %w", err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, fmt.Errorf("sync request bucket status: unexpected %T", st)
	}
	return bs.StreamInfo().State.LastSeq, nil
}

// done deletes a request, unless it was renewed since it was read (a newer
// request must not be lost).
func (r *Requester) done(ctx context.Context, connID string, rev uint64) error {
	if rev == 0 {
		return nil
	}
	kv, err := r.bucket(ctx)
	if err != nil {
		return err
	}
	err = kv.Delete(ctx, connID, jetstream.LastRevision(rev))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return nil // changed meanwhile: the newer request stays
	}
	return err
}

// watch wakes the scheduler whenever a request arrives, until ctx ends.
func (r *Requester) watch(ctx context.Context, wake chan<- struct{}, log *zap.Logger) {
	for ctx.Err() == nil {
		kv, err := r.bucket(ctx)
		if err == nil {
			var wt jetstream.KeyWatcher
			if wt, err = kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.IgnoreDeletes()); err == nil {
				for e := range wt.Updates() {
					if e == nil {
						continue
					}
					select {
					case wake <- struct{}{}:
					default:
					}
				}
				_ = wt.Stop()
			}
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("watching sync requests; polling until it works again", zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
