package backfill

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

type metrics struct {
	duration *prometheus.HistogramVec
	objects  *prometheus.CounterVec
	calls    *prometheus.CounterVec
	limited  *prometheus.CounterVec
	running  *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, log *zap.Logger) *metrics {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "itsm_sync_duration_seconds", Help: "Duration of finished syncs, from start to end, by sync kind and final status.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}, []string{"kind", "status"}),
		objects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "itsm_sync_objects_total", Help: "Records published by syncs, by record kind (issue, comment, attachment, project, user, group).",
		}, []string{"kind"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "itsm_sync_api_calls_total", Help: "Vendor API calls of syncs by vendor, endpoint template and HTTP status (error: no answer).",
		}, []string{"vendor", "endpoint", "status"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "itsm_sync_rate_limited_total", Help: "Vendor API answers refused with 429, by vendor.",
		}, []string{"vendor"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "itsm_syncs_running", Help: "Syncs this worker is running, by kind.",
		}, []string{"kind"}),
	}
	if reg == nil {
		return m
	}
	// Two workers in one process (tests) share a registry: reuse what the
	// first registered.
	register := func(c prometheus.Collector) prometheus.Collector {
		err := reg.Register(c)
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector
		}
		if err != nil {
			log.Warn("registering backfill metrics", zap.Error(err))
		}
		return c
	}
	m.duration = register(m.duration).(*prometheus.HistogramVec)
	m.objects = register(m.objects).(*prometheus.CounterVec)
	m.calls = register(m.calls).(*prometheus.CounterVec)
	m.limited = register(m.limited).(*prometheus.CounterVec)
	m.running = register(m.running).(*prometheus.GaugeVec)
	return m
}
