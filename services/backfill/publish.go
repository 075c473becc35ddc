package backfill

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
)

// publisher streams one sync's records to RAW with PublishMsgAsync, holding
// at most max unacknowledged messages: memory stays bounded whatever the
// tenant's size, and a checkpoint is only written once every record before
// it is acknowledged (flush).
type publisher struct {
	js      jetstream.JetStream
	subject string
	conn    *store.Connection
	max     int
	// pace, when set, holds publishing back while this sync is too far
	// ahead of the normalizer (see Config.MaxBacklog).
	pace *pacer
	sent int

	mu      sync.Mutex
	pending []jetstream.PubAckFuture
	lastSeq uint64
}

func newPublisher(js jetstream.JetStream, conn *store.Connection, max int) *publisher {
	return &publisher{js: js, conn: conn, max: max, subject: broker.RawSubject(broker.VendorToken(conn.Vendor), conn.ID, broker.SourceSync)}
}

// msgID is a Nats-Msg-Id: a publish repeated within RAW's duplicate window
// (a retry, an incremental sync re-reading its overlap) is dropped by
// JetStream. Hashed to keep JetStream's dedupe table small.
func msgID(parts ...string) string {
	h := fnv.New128a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func (p *publisher) message(data []byte, id string) *nats.Msg {
	m := nats.NewMsg(p.subject)
	m.Data = data
	raw.SetHeaders(m.Header, p.conn.OrganizationID, p.conn.ID, p.conn.Vendor)
	if id != "" {
		m.Header.Set(jetstream.MsgIDHeader, id)
	}
	return m
}

// record publishes one SyncRecord.
func (p *publisher) record(ctx context.Context, rec *raw.SyncRecord, id string) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode %s record: %w", rec.Type, err)
	}
	return p.publish(ctx, p.message(data, id))
}

func (p *publisher) publish(ctx context.Context, m *nats.Msg) error {
	if err := p.reserve(ctx); err != nil {
		return err
	}
	if p.pace != nil {
		if p.sent++; p.sent%p.pace.every(p.sent) == 0 {
			if err := p.pace.wait(ctx, p.sent, p.last()); err != nil {
				return err
			}
		}
	}
	f, err := p.js.PublishMsgAsync(m, jetstream.WithExpectStream(broker.StreamRaw))
	if err != nil {
		// Stalled or disconnected: fall back to a synchronous publish, which
		// waits and retries; the message id keeps it idempotent.
		return p.publishSync(ctx, m)
	}
	p.mu.Lock()
	p.pending = append(p.pending, f)
	p.mu.Unlock()
	return nil
}

// reserve waits for the oldest acks until fewer than max are pending.
func (p *publisher) reserve(ctx context.Context) error {
	for {
		p.mu.Lock()
		if len(p.pending) < p.max {
			p.mu.Unlock()
			return nil
		}
		f := p.pending[0]
		p.pending[0] = nil
		p.pending = p.pending[1:]
		p.mu.Unlock()
		if err := p.await(ctx, f); err != nil {
			return err
		}
	}
}

func (p *publisher) await(ctx context.Context, f jetstream.PubAckFuture) error {
	select {
	case ack := <-f.Ok():
		p.noteSeq(ack.Sequence)
		return nil
	case <-f.Err():
		return p.publishSync(ctx, f.Msg())
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *publisher) publishSync(ctx context.Context, m *nats.Msg) error {
	var err error
	for attempt := range 5 {
		var ack *jetstream.PubAck
		if ack, err = p.js.PublishMsg(ctx, m, jetstream.WithExpectStream(broker.StreamRaw)); err == nil {
			p.noteSeq(ack.Sequence)
			return nil
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return &infraError{fmt.Errorf("publish to %s: %w", broker.StreamRaw, err)}
}

func (p *publisher) noteSeq(seq uint64) {
	p.mu.Lock()
	if seq > p.lastSeq {
		p.lastSeq = seq
	}
	p.mu.Unlock()
}

// flush waits until every record published so far is acknowledged.
func (p *publisher) flush(ctx context.Context) error {
	for {
		p.mu.Lock()
		if len(p.pending) == 0 {
			p.mu.Unlock()
			return nil
		}
		f := p.pending[0]
		p.pending[0] = nil
		p.pending = p.pending[1:]
		p.mu.Unlock()
		if err := p.await(ctx, f); err != nil {
			return err
		}
	}
}

// last is the highest RAW sequence of this sync's acknowledged records.
func (p *publisher) last() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastSeq
}

// pacingEvery is at most how many records a sync publishes between looks
// at the normalizer's ack floor: a look is a JetStream API call.
const pacingEvery = 256

// pacer keeps a sync within a backlog of the normalizer's sync consumer:
// max, or largeMax once the sync has sent largeAfter records (see
// Config.LargeSyncAfter).
type pacer struct {
	js         jetstream.JetStream
	consumer   string
	max        uint64
	largeAfter int
	largeMax   uint64
	poll       time.Duration
}

// window is how far ahead of the ack floor a sync that has sent this many
// records may be.
func (pc *pacer) window(sent int) uint64 {
	if pc.largeAfter > 0 && sent > pc.largeAfter && pc.largeMax > 0 {
		return min(pc.largeMax, pc.max)
	}
	return pc.max
}

// every is how many records pass between looks: a quarter of the window,
// so a look never lets the sync overshoot it by much.
func (pc *pacer) every(sent int) int {
	return int(max(1, min(pacingEvery, pc.window(sent)/4)))
}

// wait returns once seq, the sync's latest acknowledged RAW sequence, is
// within the window of a sync that has sent this many records beyond the
// consumer's ack floor. Without the consumer (no normalizer has started)
// it does not wait: syncs must not depend on the normalizer to finish
// publishing.
func (pc *pacer) wait(ctx context.Context, sent int, seq uint64) error {
	w := pc.window(sent)
	for {
		c, err := pc.js.Consumer(ctx, broker.StreamRaw, pc.consumer)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		if err != nil {
			return &infraError{fmt.Errorf("read the normalizer's ack floor: %w", err)}
		}
		if floor := c.CachedInfo().AckFloor.Stream; seq <= floor+w {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pc.poll):
		}
	}
}

// infraError marks failures of the platform's own infrastructure (NATS,
// store): the sync is left RUNNING for any worker to resume, not FAILED.
type infraError struct{ err error }

func (e *infraError) Error() string { return e.err.Error() }
func (e *infraError) Unwrap() error { return e.err }
