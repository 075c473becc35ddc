package receiver

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Registerer is where the receiver registers its metrics.
type Registerer = prometheus.Registerer

type metrics struct {
	webhooks       *prometheus.CounterVec
	publishLatency prometheus.Histogram
}

func newMetrics(reg Registerer) (*metrics, error) {
	m := &metrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "itsm_webhooks_total", Help: "Webhook deliveries by result (accepted, duplicate, or the rejection reason).",
		}, []string{"vendor", "result"}),
		publishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "itsm_webhook_publish_seconds", Help: "Time from delivery read to JetStream ack.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.webhooks, m.publishLatency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register receiver metrics: %w", err)
		}
	}
	return m, nil
}
