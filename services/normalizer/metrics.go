package normalizer

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	messages *prometheus.CounterVec
	events   *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "itsm_normalizer_messages_total", Help: "RAW messages by outcome.",
		}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "itsm_events_published_total", Help: "ITSM change events published by object and change.",
		}, []string{"object", "change"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "itsm_normalizer_message_seconds", Help: "Time to process one RAW message.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.messages, m.events, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register normalizer metrics: %w", err)
		}
	}
	return m, nil
}
