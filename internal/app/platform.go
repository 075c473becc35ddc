// Package app wires the services into one process (the wiring is the one
// place that knows the vendors): the all-in-one binary runs them all on
// embedded defaults, the per-service binaries one each against shared NATS and MongoDB.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/apikey"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/ingest"
	"github.com/itsmhub/itsm/pkg/lease"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snconn"
	"github.com/itsmhub/itsm/services/backfill"
	"github.com/itsmhub/itsm/services/normalizer"
	"github.com/itsmhub/itsm/services/receiver"
)

// Components selects which services a process runs.
type Components struct {
	Receiver, Normalizer, Backfill bool
}

// All is the all-in-one process.
var All = Components{Receiver: true, Normalizer: true, Backfill: true}

// Platform is a started process; Wait blocks until it has shut down.
type Platform struct {
	cfg      config.Config
	log      *zap.Logger
	embedded *broker.Embedded
	users    broker.Users
	// One connection per component, each as the component's NATS user;
	// nc and js are the first of them (readiness, metrics).
	conns map[string]*nats.Conn
	jss   map[string]jetstream.JetStream
	nc    *nats.Conn
	js    jetstream.JetStream
	// liveJS is the normalizer's live lane's own connection.
	liveJS jetstream.JetStream
	store  store.Store
	ln     net.Listener
	sup    *supervisor
	now    func() time.Time
	mgr    *connections.Manager
	sn     *snconn.Connector
	echo   *echo.Echo

	// metricsLn serves /metrics apart from the public listener.
	metricsLn net.Listener
}

// Option changes how a platform starts; tests use them.
type Option func(*Platform)

// WithClock replaces the wall clock of the connection manager, so tests can
// share a simulator's clock (token and webhook expiry).
func WithClock(now func() time.Time) Option { return func(p *Platform) { p.now = now } }

// Start brings up the broker, the store and the selected services. The
// services stop when ctx is cancelled; call Wait for the shutdown to finish.
func Start(ctx context.Context, cfg config.Config, comps Components, log *zap.Logger, opts ...Option) (p *Platform, err error) {
	p = &Platform{cfg: cfg, log: log, now: time.Now}
	for _, o := range opts {
		o(p)
	}
	// Error returns set p to nil: close what was opened through its own copy.
	started := p
	defer func() {
		if err != nil {
			if started.sup != nil {
				started.sup.Stop()
			}
			started.closeInfra()
		}
	}()
	// The data dir holds every tenant's data and the dev encryption key.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	if err := p.connectNATS(ctx, comps); err != nil {
		return nil, err
	}
	if p.store, err = OpenStore(ctx, cfg); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		broker.NewCollector(p.js, normalizer.Consumers...))
	p.sup = newSupervisor(ctx, log)
	g := p.sup

	// Sharing one process, ingest goes first: the normalizer gives way
	// while the receiver is saturated.
	var gate *ingest.Gate
	if comps.Normalizer && comps.Receiver {
		// A hold must end well before a held message's AckWait.
		var maxHold time.Duration
		if cfg.NormalizerAckWait > 0 {
			maxHold = min(ingest.DefaultMaxHold, cfg.NormalizerAckWait/3)
		}
		gate = ingest.New(cfg.IngestFirstInflight, maxHold)
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "itsm_ingest_yields_total",
			Help: "Messages the normalizer held back while the receiver of its process was saturated."},
			func() float64 { return float64(gate.Yields()) }))
	}
	if comps.Normalizer {
		ncfg := normalizer.Config{Workers: cfg.NormalizerWorkers, MaxDeliver: cfg.NormalizerMaxDeliver,
			AckWait: cfg.NormalizerAckWait, Now: p.now, Mappers: mappers()}
		if !cfg.IsMongo() {
			ncfg = ncfg.Embedded()
		}
		if gate != nil {
			ncfg.Yield = gate
		}
		ncfg.LiveJS = p.liveJS
		n, err := normalizer.New(ncfg,
			p.jss[broker.UserNormalizer], p.store, log.Named("normalizer"), reg)
		if err != nil {
			return nil, err
		}
		g.Go("normalizer", n.Run)
	}
	if p.ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("listen on ITSM_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	// Sync requests go through a KV bucket, so any process can ask and any
	// backfill worker can serve.
	requester := backfill.NewRequester(p.stateJS(comps))
	if comps.Receiver || comps.Backfill {
		if p.mgr, err = p.connectionManager(ctx, p.stateJS(comps), log.Named("connections"), reg); err != nil {
			return nil, err
		}
		p.mgr.SetSyncRequester(requester)
	}
	if comps.Backfill {
		leases, err := lease.Open(ctx, p.jss[broker.UserBackfill], backfill.LeaseBucket, owner(), backfill.LeaseTTL, cfg.NATSReplicas)
		if err != nil {
			return nil, err
		}
		w := backfill.New(backfill.Config{IncrementalEvery: cfg.BackfillIncrementalEvery, MaxConcurrentSyncs: cfg.BackfillMaxSyncs,
			BacklogConsumer: normalizer.ConsumerName, BulkConsumer: normalizer.BulkConsumerName}, backfill.Deps{JS: p.jss[broker.UserBackfill], Store: p.store, Syncers: p.syncers(log.Named("backfill")), Leases: leases,
			Log: log.Named("backfill"), Registerer: reg, Now: p.now})
		g.Go("backfill", w.Run)
	}
	if err := p.serveMetrics(g, reg); err != nil {
		return nil, err
	}
	// Every process serves health; only the receiver serves the public API
	// and webhooks.
	var e *echo.Echo
	if comps.Receiver {
		verifiers, err := p.verifiers()
		if err != nil {
			return nil, err
		}
		rcfg := receiver.Config{Verifiers: verifiers, Quotas: cfg.Quotas, ConnectionEndpoints: p.connectionEndpoints()}
		if gate != nil {
			rcfg.Ingest = gate
		}
		r, err := receiver.New(rcfg,
			p.jss[broker.UserReceiver], p.store, apikey.NewAuthenticator(p.store, cfg.APIKeys), log.Named("receiver"), reg)
		if err != nil {
			return nil, err
		}
		r.MountConnections(p.mgr, requester)
		if err := p.mountWriteBack(r, reg); err != nil {
			return nil, err
		}
		e = r.Echo()
		p.echo = e
		p.mountHealth(e, log)
		g.Go("receiver", func(ctx context.Context) error { return r.Run(ctx, p.ln, cfg.ShutdownTimeout) })
		// Webhook upkeep runs where webhooks arrive.
		g.Go("webhook upkeep", p.mgr.Run)
		log.Info("receiver listening", zap.String("addr", p.ln.Addr().String()))
	} else {
		e = echo.New()
		e.HideBanner, e.HidePort = true, true
		p.echo = e
		p.mountHealth(e, log)
		srv := &http.Server{Handler: e, ReadHeaderTimeout: 5e9}
		g.Go("health listener", func(ctx context.Context) error {
			go func() { <-ctx.Done(); _ = srv.Close() }()
			if err := srv.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	return p, nil
}

// serveMetrics serves /metrics on ITSM_METRICS_ADDR, a listener of its own
// so that the public one never exposes the platform's internals.
func (p *Platform) serveMetrics(g *supervisor, reg *prometheus.Registry) error {
	ln, err := net.Listen("tcp", p.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on ITSM_METRICS_ADDR %s: %w", p.cfg.MetricsAddr, err)
	}
	p.metricsLn = ln
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	g.Go("metrics listener", func(ctx context.Context) error {
		go func() { <-ctx.Done(); _ = srv.Close() }()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	p.log.Info("metrics listening", zap.String("addr", ln.Addr().String()))
	return nil
}

func (p *Platform) natsReady() error {
	for _, nc := range p.conns {
		if !nc.IsConnected() {
			return errors.New("not connected to NATS")
		}
	}
	return nil
}

// Wait blocks until every service has stopped, then closes the broker
// connection, the embedded server and the store, in that order, so that
// in-flight work finishes before its dependencies go away.
func (p *Platform) Wait() error {
	err := p.sup.Wait()
	p.sup.Stop()
	p.closeInfra()
	return err
}

func (p *Platform) closeInfra() {
	for _, nc := range p.conns {
		_ = nc.Drain()
		nc.Close()
	}
	if p.embedded != nil {
		p.embedded.Shutdown()
	}
	if p.store != nil {
		_ = p.store.Close()
	}
}

// HTTPAddr is the bound HTTP address (useful with port 0).
func (p *Platform) HTTPAddr() string { return p.ln.Addr().String() }

// MetricsAddr is the bound address of the /metrics listener.
func (p *Platform) MetricsAddr() string { return p.metricsLn.Addr().String() }

// NATSURL is the URL outside clients use to reach this process's broker.
func (p *Platform) NATSURL() string {
	if p.embedded != nil {
		return p.embedded.ClientURL()
	}
	return p.cfg.NATSURL
}

// Routes lists the HTTP routes the process serves (method and path).
func (p *Platform) Routes() []*echo.Route { return p.echo.Routes() }

// Connections is the connection manager (nil without a receiver).
func (p *Platform) Connections() *connections.Manager { return p.mgr }

// Store is the process's store (tests seed connections through it).
func (p *Platform) Store() store.Store { return p.store }

// NATSUsers are the NATS users and passwords this process knows (all of
// them when it runs the embedded server).
func (p *Platform) NATSUsers() broker.Users { return p.users }

// JetStream is the process's JetStream handle, as the NATS user of its first
// component (the normalizer's in the all-in-one process).
func (p *Platform) JetStream() jetstream.JetStream { return p.js }

// OpenStore opens the store ITSM_STORE names.
func OpenStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	if cfg.IsMongo() {
		return openMongo(ctx, cfg.Store)
	}
	s, err := sqlitestore.Open(ctx, cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("ITSM_STORE: %w", err)
	}
	return s, nil
}
