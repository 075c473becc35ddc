package broker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector reports the streams' state at scrape time, so the figures are
// the broker's own (shared by every replica) rather than per-process counts.
type Collector struct {
	js        jetstream.JetStream
	consumers []string
	msgs      *prometheus.Desc
	dlq       *prometheus.Desc
	pending   *prometheus.Desc
	ackPend   *prometheus.Desc
}

// NewCollector reports the streams and the named RAW consumers' backlogs,
// labelled by consumer.
func NewCollector(js jetstream.JetStream, rawConsumers ...string) *Collector {
	return &Collector{
		js: js, consumers: rawConsumers,
		msgs:    prometheus.NewDesc("itsm_stream_messages", "Messages held by a JetStream stream.", []string{"stream"}, nil),
		dlq:     prometheus.NewDesc("itsm_dlq_messages", "Messages in the dead-letter stream.", nil, nil),
		pending: prometheus.NewDesc("itsm_normalizer_pending", "RAW messages not yet delivered to the normalizer (its lag), by consumer (lane).", []string{"consumer"}, nil),
		ackPend: prometheus.NewDesc("itsm_normalizer_ack_pending", "RAW messages delivered to the normalizer and not yet acknowledged, by consumer (lane).", []string{"consumer"}, nil),
	}
}

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.msgs
	ch <- c.dlq
	ch <- c.pending
	ch <- c.ackPend
}

// Collect skips what the broker cannot answer quickly: a scrape must not hang.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, name := range []string{StreamRaw, StreamITSM, StreamDLQ} {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			continue
		}
		info, err := s.Info(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.msgs, prometheus.GaugeValue, float64(info.State.Msgs), name)
		if name == StreamDLQ {
			ch <- prometheus.MustNewConstMetric(c.dlq, prometheus.GaugeValue, float64(info.State.Msgs))
		}
	}
	for _, name := range c.consumers {
		cons, err := c.js.Consumer(ctx, StreamRaw, name)
		if err != nil {
			continue
		}
		ci, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(ci.NumPending), name)
		ch <- prometheus.MustNewConstMetric(c.ackPend, prometheus.GaugeValue, float64(ci.NumAckPending), name)
	}
}
