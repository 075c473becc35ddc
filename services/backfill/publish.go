package backfill

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
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
	// bulk, when set, is where the records go once the sync is large
	// (Config.BulkConsumer); only with pace, which says when.
	bulk string
	conn *store.Connection
	max  int
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

// toBulk sends the records of a paced sync, once it is large, to the bulk
// lane.
func (p *publisher) toBulk() {
	p.bulk = broker.RawSubject(broker.VendorToken(p.conn.Vendor), p.conn.ID, broker.SourceBulk)
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
		p.sent++
		if p.bulk != "" && p.pace.large(p.sent) {
			m.Subject = p.bulk
		}
		p.pace.note(p.sent)
		if p.sent%p.pace.every(p.sent) == 0 {
			if p.pace.givingWay(p.sent) {
				// Its records still unacknowledged would be ahead of the
				// window it keeps while giving way.
				if err := p.flush(ctx); err != nil {
					return err
				}
			}
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
	if p.pace != nil {
		p.pace.acked(p.sent, seq)
	}
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
// Config.LargeSyncAfter), or yieldMax while it gives way to a smaller sync
// of its worker (Config.LargeSyncYield).
type pacer struct {
	js       jetstream.JetStream
	consumer string
	// bulkConsumer, when set, paces a large sync instead: its records
	// past the first largeAfter are in the bulk lane.
	bulkConsumer string
	max          uint64
	largeAfter   int
	largeMax     uint64
	yieldMax     uint64
	// small is the worker's syncs that are not yet large.
	small *smallSyncs
	poll  time.Duration
	// floor is the sync lane consumer's ack floor as last read: small
	// syncs' records are there.
	floor atomic.Uint64
}

func (pc *pacer) large(sent int) bool {
	return pc.largeAfter > 0 && sent > pc.largeAfter && pc.largeMax > 0
}

// note records that the sync has sent this many records: until it is
// large, its records make the worker's large syncs give way.
func (pc *pacer) note(sent int) {
	switch {
	case !pc.large(sent):
		pc.small.published(pc, time.Now())
	case sent == pc.largeAfter+1:
		pc.small.end(pc, time.Now())
	}
}

// acked records the RAW sequence of one of the sync's records.
func (pc *pacer) acked(sent int, seq uint64) {
	if !pc.large(sent) {
		pc.small.acked(pc, seq)
	}
}

// givingWay reports whether a sync that has sent this many records is
// large while a smaller sync of its worker publishes or has records not
// yet stored.
func (pc *pacer) givingWay(sent int) bool {
	return pc.large(sent) && pc.yieldMax > 0 && pc.small.ahead(pc, time.Now(), pc.floor.Load())
}

// window is how far ahead of the ack floor a sync that has sent this many
// records may be.
func (pc *pacer) window(sent int) uint64 {
	switch {
	case pc.givingWay(sent):
		return min(pc.yieldMax, pc.largeMax, pc.max)
	case pc.large(sent):
		return min(pc.largeMax, pc.max)
	}
	return pc.max
}

// every is how many records pass between looks: a quarter of the window,
// so a look never lets the sync overshoot it by much.
func (pc *pacer) every(sent int) int {
	return int(max(1, min(pacingEvery, pc.window(sent)/4)))
}

const (
	// givingWayFor is how long after a small sync's last publish the
	// large ones keep giving way: longer than the gap between two of its
	// pages, short against a vendor that makes it wait.
	givingWayFor = 200 * time.Millisecond
	// storedWithin bounds how long the large syncs wait, after a small one
	// has ended, for its records to be stored (a normalizer that stopped
	// consuming must not stop every large sync).
	storedWithin = 30 * time.Second
)

// smallSyncs tracks a worker's syncs that are not yet large.
type smallSyncs struct {
	mu sync.Mutex
	m  map[*pacer]*smallSync
}

type smallSync struct {
	at    time.Time // its last publish, or when it ended
	seq   uint64    // its highest acknowledged RAW sequence
	ended bool      // it ended or became large
}

func (s *smallSyncs) get(pc *pacer) *smallSync {
	ss := s.m[pc]
	if ss == nil {
		ss = &smallSync{}
		s.m[pc] = ss
	}
	return ss
}

func (s *smallSyncs) published(pc *pacer, now time.Time) {
	s.mu.Lock()
	s.get(pc).at = now
	s.mu.Unlock()
}

func (s *smallSyncs) acked(pc *pacer, seq uint64) {
	s.mu.Lock()
	if ss := s.get(pc); seq > ss.seq {
		ss.seq = seq
	}
	s.mu.Unlock()
}

// end marks a sync as ended, or large: it is forgotten once its records
// are stored.
func (s *smallSyncs) end(pc *pacer, now time.Time) {
	s.mu.Lock()
	if ss := s.m[pc]; ss != nil {
		ss.at, ss.ended = now, true
	}
	s.mu.Unlock()
}

// others reports whether a sync other than pc is registered.
func (s *smallSyncs) others(pc *pacer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for other := range s.m {
		if other != pc {
			return true
		}
	}
	return false
}

// ahead reports whether a small sync other than pc published within
// givingWayFor or has records past floor, the sync consumer's ack floor.
func (s *smallSyncs) ahead(pc *pacer, now time.Time, floor uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for other, ss := range s.m {
		stored := ss.seq <= floor
		if ss.ended && (stored || now.Sub(ss.at) > storedWithin) {
			delete(s.m, other)
			continue
		}
		if other != pc && (!stored || now.Sub(ss.at) < givingWayFor) {
			found = true
		}
	}
	return found
}

// wait returns once seq, the sync's latest acknowledged RAW sequence, is
// within the window of a sync that has sent this many records beyond the
// ack floor of its lane's consumer. Without the consumer (no normalizer has
// started) it does not wait: syncs must not depend on the normalizer to
// finish publishing.
func (pc *pacer) wait(ctx context.Context, sent int, seq uint64) error {
	inBulk := pc.bulkConsumer != "" && pc.large(sent)
	for {
		var floor uint64
		// A sync in the bulk lane reads the sync lane's floor only to learn
		// whether the smaller syncs it gives way to are stored.
		if !inBulk || pc.small.others(pc) {
			f, ok, err := pc.ackFloor(ctx, pc.consumer)
			if err != nil || !ok {
				return err
			}
			pc.floor.Store(f)
			floor = f
		}
		if inBulk {
			f, ok, err := pc.ackFloor(ctx, pc.bulkConsumer)
			if err != nil || !ok {
				return err
			}
			floor = f
		}
		if seq <= floor+pc.window(sent) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pc.poll):
		}
	}
}

// ackFloor reads a consumer's ack floor; ok is false when the consumer does
// not exist.
func (pc *pacer) ackFloor(ctx context.Context, consumer string) (floor uint64, ok bool, err error) {
	c, err := pc.js.Consumer(ctx, broker.StreamRaw, consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, &infraError{fmt.Errorf("read the normalizer's ack floor: %w", err)}
	}
	return c.CachedInfo().AckFloor.Stream, true, nil
}

// infraError marks failures of the platform's own infrastructure (NATS,
// store): the sync is left RUNNING for any worker to resume, not FAILED.
type infraError struct{ err error }

func (e *infraError) Error() string { return e.err.Error() }
func (e *infraError) Unwrap() error { return e.err }
