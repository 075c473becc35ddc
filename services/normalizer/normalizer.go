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
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// ConsumerName is the durable consumer shared by all normalizer replicas.
const ConsumerName = "normalizer"

// Store is what the normalizer needs from the store.
type Store interface {
	Get(ctx context.Context, orgID string, kind itsm.Kind, id string) (*store.Document, error)
	Put(ctx context.Context, doc *store.Document) (store.Outcome, error)
	LookupConnection(ctx context.Context, id string) (*store.Connection, error)
}

// Config of the normalizer.
type Config struct {
	// Workers process messages concurrently; ordering is not needed because
	// the version guard makes any order converge.
	Workers int
	// MaxDeliver attempts before a message is dead-lettered.
	MaxDeliver int
	AckWait    time.Duration
	// ConnectionTTL bounds how stale a cached connection (its mappings) may be.
	ConnectionTTL time.Duration
	Now           func() time.Time
}

func (c *Config) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = 8
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.ConnectionTTL <= 0 {
		c.ConnectionTTL = 10 * time.Second
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
}

// New builds a normalizer; Run starts it.
func New(cfg Config, js jetstream.JetStream, st Store, log *zap.Logger, reg prometheus.Registerer) (*Normalizer, error) {
	cfg.setDefaults()
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Normalizer{cfg: cfg, js: js, store: st, log: log, m: m,
		conns: store.NewConnectionCache(st.LookupConnection, cfg.ConnectionTTL, cfg.Now)}, nil
}

// Run consumes until ctx is cancelled, then drains: messages already fetched
// are processed and acked before it returns.
func (n *Normalizer) Run(ctx context.Context) error {
	cons, err := n.js.CreateOrUpdateConsumer(ctx, broker.StreamRaw, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       n.cfg.AckWait,
		MaxDeliver:    n.cfg.MaxDeliver,
		FilterSubject: "raw.>",
		MaxAckPending: 8192,
	})
	if err != nil {
		return fmt.Errorf("normalizer consumer: %w", err)
	}
	msgs := make(chan jetstream.Msg, n.cfg.Workers*4)
	var wg sync.WaitGroup
	for range n.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				n.handle(m)
			}
		}()
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m },
		jetstream.PullMaxMessages(512),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			n.log.Warn("normalizer consume", zap.Error(err))
		}))
	if err != nil {
		close(msgs)
		wg.Wait()
		return fmt.Errorf("normalizer consume: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	close(msgs)
	wg.Wait()
	return nil
}

// handle processes one RAW message to completion. It uses its own context:
// a shutdown must let in-flight messages finish and ack, not abandon them
// half-written.
func (n *Normalizer) handle(msg jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.AckWait)
	defer cancel()
	start := n.cfg.Now()
	meta, err := msg.Metadata()
	if err != nil {
		n.log.Error("message without metadata", zap.String("subject", msg.Subject()), zap.Error(err))
		_ = msg.Term()
		return
	}
	res := n.process(ctx, msg, meta.NumDelivered > 1)
	log := n.log.With(zap.String("subject", msg.Subject()),
		zap.String("organization_id", msg.Headers().Get(itsm.HeaderOrganization)),
		zap.String("connection_id", msg.Headers().Get(itsm.HeaderConnection)),
		zap.Uint64("stream_seq", meta.Sequence.Stream), zap.Uint64("deliveries", meta.NumDelivered))
	switch {
	case res.err == nil:
		n.m.messages.WithLabelValues(res.result).Inc()
		if err := msg.Ack(); err != nil {
			log.Warn("ack failed; the message will be redelivered and deduplicated", zap.Error(err))
		}
	case res.permanent || meta.NumDelivered >= uint64(n.cfg.MaxDeliver):
		log.Warn("dead-lettering message", zap.Error(res.err))
		if err := n.deadLetter(ctx, msg, meta.NumDelivered, res.err); err != nil {
			log.Error("dead-letter publish failed; will retry", zap.Error(err))
			_ = msg.NakWithDelay(time.Second)
			return
		}
		n.m.messages.WithLabelValues("dead_lettered").Inc()
		_ = msg.Ack()
	default:
		log.Warn("processing failed; will retry", zap.Error(res.err))
		n.m.messages.WithLabelValues("retried").Inc()
		_ = msg.NakWithDelay(retryDelay(meta.NumDelivered))
	}
	n.m.duration.Observe(n.cfg.Now().Sub(start).Seconds())
}

func retryDelay(deliveries uint64) time.Duration {
	d := time.Duration(1<<min(deliveries, 6)) * 100 * time.Millisecond
	return min(d, 10*time.Second)
}

// Header names on dead-lettered messages.
const (
	HeaderError           = "Itsm-Error"
	HeaderOriginalSubject = "Itsm-Original-Subject"
	HeaderDeliveries      = "Itsm-Deliveries"
)

func (n *Normalizer) deadLetter(ctx context.Context, msg jetstream.Msg, deliveries uint64, cause error) error {
	out := natsMsg(broker.DLQSubject(msg.Subject()), msg.Data())
	for k, vs := range msg.Headers() {
		if k == "Nats-Msg-Id" || k == "Nats-Expected-Stream" {
			continue
		}
		out.Header[k] = vs
	}
	out.Header.Set(HeaderError, cause.Error())
	out.Header.Set(HeaderOriginalSubject, msg.Subject())
	out.Header.Set(HeaderDeliveries, fmt.Sprint(deliveries))
	if _, err := n.js.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("publish to DLQ: %w", err)
	}
	return nil
}

type result struct {
	result    string
	err       error
	permanent bool
}

func permanent(err error) result { return result{err: err, permanent: true} }

var errUnknownConnection = errors.New("unknown connection")
