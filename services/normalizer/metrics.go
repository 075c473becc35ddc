package normalizer

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	messages *prometheus.CounterVec
	events   *prometheus.CounterVec
	// silent counts newer versions that changed nothing of their object:
	// stored for the version guard, published as no event.
	silent   prometheus.Counter
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
		silent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "itsm_normalizer_unchanged_versions_total", Help: "Newer vendor versions that changed nothing of their object (stored, not published).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "itsm_normalizer_message_seconds", Help: "Time to process one RAW message.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.messages, m.events, m.silent, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register normalizer metrics: %w", err)
		}
	}
	return m, nil
}
