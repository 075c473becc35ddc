// Package normalizer is the single writer of ITSM documents: it consumes
// vendor records from the RAW stream, maps them, writes them under the
// version guard and publishes one itsm.<kind>.updated event per version.
package normalizer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/dlq"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
)

// The normalizer's three lanes, each a durable consumer shared by all
// replicas with workers of its own: live deliveries (webhooks, pushes)
// never queue behind a sync's records, whoever's sync it is, and a large
// sync's records past its first ones (the bulk lane) give way to live
// deliveries and to every other sync's records, so one tenant's backlog
// does not hold another's sync.
const (
	// ConsumerName takes sync records (raw.*.*.sync). It keeps the name of
	// the single consumer earlier versions had, which it is migrated from.
	ConsumerName = broker.ConsumerNormalizer
	// LiveConsumerName takes live deliveries (raw.*.*.webhook).
	LiveConsumerName = broker.ConsumerNormalizerLive
	// BulkConsumerName takes large syncs' records (raw.*.*.bulk).
	BulkConsumerName = broker.ConsumerNormalizerBulk
)

// Consumers are the lanes' consumer names, for tools that watch the
// normalizer's backlog.
var Consumers = []string{LiveConsumerName, ConsumerName, BulkConsumerName}

const (
	syncFilter   = "raw.*.*." + broker.SourceSync
	liveFilter   = "raw.*.*." + broker.SourceWebhook
	bulkFilter   = "raw.*.*." + broker.SourceBulk
	legacyFilter = "raw.>"
)

// Store is what the normalizer needs from the store.
type Store interface {
	Get(ctx context.Context, orgID string, kind itsm.Kind, id string) (*store.Document, error)
	Put(ctx context.Context, doc *store.Document) (store.Outcome, error)
	Insert(ctx context.Context, doc *store.Document) (store.Outcome, error)
	List(ctx context.Context, f store.Filter) (store.Page, error)
	MarkSeen(ctx context.Context, orgID string, kind itsm.Kind, id, syncID string) error
	LookupConnection(ctx context.Context, id string) (*store.Connection, error)
	// For re-mapping stored objects after a mapping change.
	FindConnections(ctx context.Context, q store.ConnectionQuery) ([]*store.Connection, error)
	UpdateConnection(ctx context.Context, c *store.Connection) error
}

// Mapper maps one vendor's RAW records to ITSM records; the normalizer picks
// it by the <vendor> token of the RAW subject (for re-mapping, by
// broker.VendorToken of the connection's vendor). Errors wrap
// itsm.ErrMalformed, itsm.ErrNotAnEvent (dead-lettered) or
// itsm.ErrUnsupportedEvent (acknowledged and counted).
type Mapper interface {
	// MapWebhook maps a live delivery (raw.<vendor>.<connection>.webhook).
	MapWebhook(conn *store.Connection, body []byte) ([]itsm.Record, error)
	// MapSync maps a record a sync fetched; never a reconcile marker.
	MapSync(conn *store.Connection, sr raw.SyncRecord) ([]itsm.Record, error)
	// Remap maps a stored live ticket's vendor values (its vendor
	// attributes) again with conn's current mapping and reports whether its
	// status or priority changed.
	Remap(conn *store.Connection, t *itsm.Ticket) bool
}

// Config of the normalizer.
type Config struct {
	// Mappers by RAW subject vendor token ("jira"): the vendors this
	// normalizer maps. Records of any other vendor are dead-lettered.
	Mappers map[string]Mapper
	// LiveWorkers process live deliveries; few are needed, as live traffic
	// comes in small amounts and must not wait for a worker.
	LiveWorkers int
	// Workers process sync records concurrently; ordering is not needed because
	// the version guard makes any order converge (and objectLocks keeps one
	// object's events in version order). Mostly they wait on the store
	// and on JetStream acks, so there are more than cores; more make
	// larger group commits on SQLite, but every one of them shares the
	// store and the broker with the live lane, so the default is sized for
	// live latency during a sync (docs/performance.md).
	Workers int
	// MaxDeliver attempts before a message is dead-lettered. The normalizer
	// counts them, not the server (see Run).
	MaxDeliver int
	AckWait    time.Duration
	// MessageTimeout bounds the work on one message; zero means AckWait.
	// Negative means none, for stores that bound their own calls (SQLite,
	// through its busy timeout): a cancellable context costs the SQLite
	// driver a watcher goroutine per statement, a fifth of a write's CPU.
	// NATS calls keep their client's own timeout either way.
	MessageTimeout time.Duration
	// ConnectionTTL bounds how stale a cached connection (its mappings) may be.
	ConnectionTTL time.Duration
	// RemapEvery is how often connections are checked for a mapping change
	// that needs their stored tickets re-mapped.
	RemapEvery time.Duration
	// RetryDelay is the first retry's delay after a transient failure; it
	// doubles per delivery up to MaxRetryDelay.
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// CacheEntries > 0 keeps that many recently written objects' versions
	// and field hashes in memory, sparing a store read per write (see
	// docCache). Only for a single normalizer process per store, such as
	// the SQLite deployment; zero (the default) reads the store every time.
	CacheEntries int
	// Yield, when set, runs before each message: it may hold the worker
	// back while ingest sharing this process is saturated (ingest.Gate).
	Yield Yielder
	// LiveJS, when set, is a NATS connection of the live lane's own: it
	// fetches, acknowledges and publishes the events of live deliveries,
	// so that they never queue behind a sync's in one connection's
	// outbound buffer or in the server's handling of that connection.
	LiveJS jetstream.JetStream
	Now    func() time.Time
}

// Yielder lets the normalizer give way to other work of its process.
type Yielder interface {
	Yield(ctx context.Context)
}

// Embedded is c for the embedded deployment: one normalizer process over a
// local SQLite file. One process per store is the condition under which the
// version cache is safe, and a local file has no network hangs for a
// per-message timeout to cut.
func (c Config) Embedded() Config {
	c.CacheEntries, c.MessageTimeout = 16384, -1
	return c
}

func (c *Config) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.LiveWorkers <= 0 {
		c.LiveWorkers = 64
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MessageTimeout == 0 {
		c.MessageTimeout = c.AckWait
	}
	if c.RemapEvery <= 0 {
		c.RemapEvery = 5 * time.Second
	}
	if c.ConnectionTTL <= 0 {
		c.ConnectionTTL = 10 * time.Second
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = 200 * time.Millisecond
	}
	if c.MaxRetryDelay <= 0 {
		c.MaxRetryDelay = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Normalizer consumes RAW and writes the store.
type Normalizer struct {
	cfg   Config
	js    jetstream.JetStream
	store Store
	log   *zap.Logger
	m     *metrics
	conns *store.ConnectionCache
	locks *objectLocks
	cache *docCache // nil when disabled
	// novelty says when to insert without reading first.
	novelty novelty
	// cons, liveCons and bulkCons are the lanes' consumers once Run
	// created them; reconcile markers read their ack floors.
	cons, liveCons, bulkCons jetstream.Consumer
	// stopping is closed when Run is asked to stop: waits end early then.
	stopping <-chan struct{}
	// yieldCtx ends with Run's context: a worker never yields past a stop.
	yieldCtx context.Context
}

// New builds a normalizer; Run starts it.
func New(cfg Config, js jetstream.JetStream, st Store, log *zap.Logger, reg prometheus.Registerer) (*Normalizer, error) {
	cfg.setDefaults()
	if len(cfg.Mappers) == 0 {
		return nil, errors.New("normalizer: no vendor mappers configured")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Normalizer{cfg: cfg, js: js, store: st, log: log, m: m, locks: newObjectLocks(),
		cache: newDocCache(cfg.CacheEntries),
		conns: store.NewConnectionCache(st.LookupConnection, cfg.ConnectionTTL, cfg.Now)}, nil
}

// Run consumes until ctx is cancelled, then drains: messages already fetched
// are processed and acked before it returns.
func (n *Normalizer) Run(ctx context.Context) error {
	live, syncs, bulk, err := n.consumers(ctx)
	if err != nil {
		if ctx.Err() != nil {
			// Stopped while starting: nothing was consumed, so nothing is
			// left half-done. Like a stop after start, that is no error.
			return nil
		}
		return err
	}
	n.cons, n.liveCons, n.bulkCons, n.stopping, n.yieldCtx = syncs, live, bulk, ctx.Done(), ctx
	if n.cfg.LiveJS != nil {
		if live, err = n.cfg.LiveJS.Consumer(ctx, broker.StreamRaw, LiveConsumerName); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("normalizer live lane: %w", err)
		}
	}
	share := newLaneShare(max(1, n.cfg.Workers/bulkShareDivisor))
	var lanes []*laneRun
	for _, l := range []struct {
		cons    jetstream.Consumer
		workers int
		kind    lane
	}{{live, n.cfg.LiveWorkers, laneLive}, {syncs, n.cfg.Workers, laneSync}, {bulk, n.cfg.Workers, laneBulk}} {
		lr, err := n.startLane(l.cons, l.workers, l.kind, share)
		if err != nil {
			for _, r := range lanes {
				r.stop()
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		lanes = append(lanes, lr)
	}
	remapped := make(chan struct{})
	go func() {
		defer close(remapped)
		n.remapLoop(ctx)
	}()
	<-ctx.Done()
	<-remapped
	// In this order: the bulk lane's workers may wait until the other
	// lanes' messages are handled.
	for _, r := range lanes {
		r.stop()
	}
	return nil
}

// lane is which of the normalizer's consumers a message came from.
type lane int

const (
	laneLive lane = iota
	laneSync
	laneBulk
)

// bulkShareDivisor: while live deliveries or sync-lane records wait or are
// in work, the bulk lane keeps Workers/bulkShareDivisor of its workers
// busy. It keeps moving, so that what it has fetched never waits out its
// ack deadline however many small syncs come.
const bulkShareDivisor = 16

// laneShare makes the bulk lane give way to the other two: they count the
// messages they have received and not yet handled; while there are any, at
// most few bulk messages are in work. Live deliveries count too: a large
// sync's backlog then takes less of the cores they wait for.
type laneShare struct {
	mu      sync.Mutex
	changed *sync.Cond
	ahead   int // live and sync-lane messages received, not yet handled
	bulk    int // bulk-lane messages in work
	few     int
}

func newLaneShare(few int) *laneShare {
	s := &laneShare{few: few}
	s.changed = sync.NewCond(&s.mu)
	return s
}

func (s *laneShare) aheadIn() {
	s.mu.Lock()
	s.ahead++
	s.mu.Unlock()
}

func (s *laneShare) aheadOut() {
	s.mu.Lock()
	s.ahead--
	if s.ahead == 0 {
		s.changed.Broadcast()
	}
	s.mu.Unlock()
}

// enterBulk waits until a bulk message may be worked on.
func (s *laneShare) enterBulk() {
	s.mu.Lock()
	for s.ahead > 0 && s.bulk >= s.few {
		s.changed.Wait()
	}
	s.bulk++
	s.mu.Unlock()
}

func (s *laneShare) leaveBulk() {
	s.mu.Lock()
	s.bulk--
	s.changed.Signal()
	s.mu.Unlock()
}

// laneRun is one lane consuming: its subscription and its workers.
type laneRun struct {
	cc   jetstream.ConsumeContext
	msgs chan jetstream.Msg
	wg   sync.WaitGroup
}

// stop drains the subscription, then lets the workers finish what was
// fetched.
func (r *laneRun) stop() {
	r.cc.Drain()
	<-r.cc.Closed()
	close(r.msgs)
	r.wg.Wait()
}

func (n *Normalizer) startLane(cons jetstream.Consumer, workers int, kind lane, share *laneShare) (*laneRun, error) {
	r := &laneRun{msgs: make(chan jetstream.Msg, workers*4)}
	for range workers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for m := range r.msgs {
				if kind == laneBulk {
					share.enterBulk()
				}
				if n.cfg.Yield != nil {
					n.cfg.Yield.Yield(n.yieldCtx)
				}
				n.handle(m, kind == laneLive)
				if kind == laneBulk {
					share.leaveBulk()
				} else {
					share.aheadOut()
				}
			}
		}()
	}
	deliver := func(m jetstream.Msg) {
		if kind != laneBulk {
			share.aheadIn()
		}
		r.msgs <- m
	}
	cc, err := cons.Consume(deliver,
		jetstream.PullMaxMessages(min(512, max(workers*2, 64))),
		// A pull the client and the server disagree about is only noticed
		// when it expires (nats.go issue #1622): 5 s bounds such a stall,
		// for one more pull request per 5 s when idle.
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			n.log.Warn("normalizer consume", zap.Error(err))
		}))
	if err != nil {
		close(r.msgs)
		r.wg.Wait()
		return nil, fmt.Errorf("normalizer consume: %w", err)
	}
	r.cc = cc
	return r, nil
}

// consumers creates or updates the lanes' consumers. A consumer of an
// earlier version (one lane for everything, raw.>) becomes the sync lane,
// and the live lane starts where its ack floor stood, so no live delivery
// it had not finished is skipped (one finished above the floor is seen
// again, which the version guard makes harmless). The bulk lane's subject
// is new, so it starts from the stream's beginning.
func (n *Normalizer) consumers(ctx context.Context) (live, syncs, bulk jetstream.Consumer, err error) {
	var liveStart uint64
	if old, err := n.js.Consumer(ctx, broker.StreamRaw, ConsumerName); err == nil {
		if info := old.CachedInfo(); info.Config.FilterSubject == legacyFilter {
			liveStart = info.AckFloor.Stream + 1
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, nil, nil, fmt.Errorf("normalizer consumer: %w", err)
	}
	live, err = n.ensureConsumer(ctx, LiveConsumerName, liveFilter, 4096, liveStart)
	if err != nil {
		return nil, nil, nil, err
	}
	syncs, err = n.ensureConsumer(ctx, ConsumerName, syncFilter, 8192, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	bulk, err = n.ensureConsumer(ctx, BulkConsumerName, bulkFilter, 8192, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	return live, syncs, bulk, nil
}

// ensureConsumer creates a lane's consumer, starting at start (from the
// stream's beginning when zero), or updates an existing one, keeping where
// it starts (which the server does not let change).
func (n *Normalizer) ensureConsumer(ctx context.Context, name, filter string, maxAckPending int, start uint64) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:   name,
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   n.cfg.AckWait,
		// The server must never give up on a message by itself: that would
		// drop it silently. The normalizer counts deliveries and moves a
		// message to the DLQ after Config.MaxDeliver; if that publish fails
		// too, the next delivery tries again.
		MaxDeliver:    -1,
		FilterSubject: filter,
		MaxAckPending: maxAckPending,
	}
	if start > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	if cur, err := n.js.Consumer(ctx, broker.StreamRaw, name); err == nil {
		cfg.DeliverPolicy, cfg.OptStartSeq = cur.CachedInfo().Config.DeliverPolicy, cur.CachedInfo().Config.OptStartSeq
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("normalizer consumer %s: %w", name, err)
	}
	cons, err := n.js.CreateOrUpdateConsumer(ctx, broker.StreamRaw, cfg)
	if err != nil {
		return nil, fmt.Errorf("normalizer consumer %s: %w", name, err)
	}
	return cons, nil
}

// Idle reports whether both lanes have processed and acknowledged every RAW
// message (a lane whose consumer does not exist yet is not idle).
func Idle(ctx context.Context, js jetstream.JetStream) (bool, error) {
	for _, name := range Consumers {
		c, err := js.Consumer(ctx, broker.StreamRaw, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		info := c.CachedInfo()
		// Every delivery acknowledged, too: a message waiting out a retry
		// delay is neither pending nor always counted as awaiting its ack.
		if info.NumPending > 0 || info.NumAckPending > 0 || info.AckFloor.Consumer < info.Delivered.Consumer {
			return false, nil
		}
	}
	return true, nil
}

// handle processes one RAW message to completion. It uses its own context:
// a shutdown must let in-flight messages finish and ack, not abandon them
// half-written.
func (n *Normalizer) handle(msg jetstream.Msg, live bool) {
	start := n.cfg.Now()
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery at all; nothing can be acked or retried.
		n.log.Error("message without metadata", zap.String("subject", msg.Subject()), zap.Error(err))
		_ = msg.Term()
		return
	}
	ctx := context.Background()
	if live {
		// Live writes go ahead of a sync's in the store's queue (and
		// publish on the live lane's connection, see eventJS).
		ctx = store.Urgent(ctx)
	}
	if n.cfg.MessageTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.MessageTimeout)
		defer cancel()
	}
	res := n.safeProcess(ctx, msg, meta)
	// Built only when something is logged: zap encodes With fields eagerly,
	// an allocation and encoding per message for lines rarely written.
	log := func() *zap.Logger {
		return n.log.With(zap.String("subject", msg.Subject()),
			zap.String("organization_id", msg.Headers().Get(itsm.HeaderOrganization)),
			zap.String("connection_id", msg.Headers().Get(itsm.HeaderConnection)),
			zap.Uint64("stream_seq", meta.Sequence.Stream), zap.Uint64("deliveries", meta.NumDelivered))
	}
	switch {
	case res.deferred:
		// Not a failure: a reconcile marker still waits for the records
		// before it, after waiting in place for a while already.
		n.m.messages.WithLabelValues("deferred").Inc()
		_ = msg.NakWithDelay(n.retryDelay(1))
	case res.err == nil:
		n.m.messages.WithLabelValues(res.result).Inc()
		if res.result == "unsupported" {
			log().Debug("event not mapped; acknowledged", zap.String("reason", res.detail))
		}
		if err := msg.Ack(); err != nil {
			log().Warn("ack failed; the message will be redelivered and deduplicated", zap.Error(err))
		}
	case res.permanent || meta.NumDelivered >= uint64(n.cfg.MaxDeliver):
		log().Warn("dead-lettering message", zap.Error(res.err))
		if err := n.deadLetter(ctx, msg, meta, res.err); err != nil {
			log().Error("dead-letter publish failed; will retry", zap.Error(err))
			_ = msg.NakWithDelay(n.retryDelay(meta.NumDelivered))
			return
		}
		n.m.messages.WithLabelValues("dead_lettered").Inc()
		_ = msg.Ack()
	default:
		log().Warn("processing failed; will retry", zap.Error(res.err))
		n.m.messages.WithLabelValues("retried").Inc()
		_ = msg.NakWithDelay(n.retryDelay(meta.NumDelivered))
	}
	n.m.duration.Observe(n.cfg.Now().Sub(start).Seconds())
}

// safeProcess turns a panic in mapping or writing into a dead letter: one bad
// payload must never take the process (and with it every replica, in turn)
// down.
func (n *Normalizer) safeProcess(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) (res result) {
	defer func() {
		if r := recover(); r != nil {
			res = permanent(fmt.Errorf("panic while processing: %v", r))
		}
	}()
	return n.process(ctx, msg, meta)
}

// eventJS is the connection a message's events are published on: the live
// lane's own for live work (marked urgent by handle), else the shared one.
func (n *Normalizer) eventJS(ctx context.Context) jetstream.JetStream {
	if n.cfg.LiveJS != nil && store.IsUrgent(ctx) {
		return n.cfg.LiveJS
	}
	return n.js
}

func (n *Normalizer) retryDelay(deliveries uint64) time.Duration {
	d := n.cfg.RetryDelay << min(deliveries-1, 16)
	return min(d, n.cfg.MaxRetryDelay)
}

// Header names on dead-lettered messages (see package dlq).
const (
	HeaderError           = dlq.HeaderError
	HeaderOriginalSubject = dlq.HeaderOriginalSubject
	HeaderDeliveries      = dlq.HeaderDeliveries
)

func (n *Normalizer) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, cause error) error {
	out := dlq.Message(msg.Subject(), msg.Headers(), msg.Data(), meta.Sequence.Stream, meta.NumDelivered, cause)
	if _, err := n.js.PublishMsg(ctx, out, jetstream.WithMsgID(dlq.MsgID(meta.Sequence.Stream)),
		jetstream.WithExpectStream(broker.StreamDLQ)); err != nil {
		return fmt.Errorf("publish to DLQ: %w", err)
	}
	return nil
}

type result struct {
	result string
	// detail says why, for results worth a log line (unsupported events).
	detail    string
	err       error
	permanent bool
	// deferred: retry later without counting it as a failure.
	deferred bool
}

func permanent(err error) result { return result{err: err, permanent: true} }

var errUnknownConnection = errors.New("unknown connection")

// errUnknownVendor: a RAW subject's vendor token that no configured Mapper
// maps.
var errUnknownVendor = errors.New("no mapper for vendor")
