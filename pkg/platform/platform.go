// Package platform wires the services into one process: the all-in-one
// binary runs them all on embedded defaults, the per-service binaries one
// each against shared NATS and MongoDB.
package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/itsmhub/itsm/pkg/apikey"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/lease"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
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
	nc       *nats.Conn
	js       jetstream.JetStream
	store    store.Store
	ln       net.Listener
	group    *errgroup.Group
	cancel   context.CancelFunc
	now      func() time.Time
	mgr      *connections.Manager
	echo     *echo.Echo
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
	defer func() {
		if err != nil {
			p.closeInfra()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	if cfg.NATSURL == "" {
		p.embedded, err = broker.StartEmbedded(broker.EmbeddedConfig{Addr: cfg.NATSListen, StoreDir: filepath.Join(cfg.DataDir, "nats")})
		if err != nil {
			return nil, err
		}
		p.nc, err = p.embedded.Connect("itsm")
		log.Info("embedded NATS JetStream started", zap.String("url", p.embedded.ClientURL()))
	} else {
		p.nc, err = ConnectNATS(cfg, "itsm")
	}
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	if p.js, err = jetstream.New(p.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := broker.EnsureStreams(ctx, p.js, cfg.NATSReplicas); err != nil {
		return nil, err
	}
	if p.store, err = OpenStore(ctx, cfg); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		broker.NewCollector(p.js, normalizer.Consumers...))
	runCtx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	g, gctx := errgroup.WithContext(runCtx)
	p.group = g

	if comps.Normalizer {
		ncfg := normalizer.Config{Workers: cfg.NormalizerWorkers, MaxDeliver: cfg.NormalizerMaxDeliver,
			AckWait: cfg.NormalizerAckWait, Now: p.now}
		if !cfg.IsMongo() {
			ncfg = ncfg.Embedded()
		}
		n, err := normalizer.New(ncfg,
			p.js, p.store, log.Named("normalizer"), reg)
		if err != nil {
			return nil, err
		}
		g.Go(func() error { return n.Run(gctx) })
	}
	if p.ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("listen on ITSM_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	// Sync requests go through a KV bucket, so any process can ask and any
	// backfill worker can serve.
	requester := backfill.NewRequester(p.js)
	if comps.Receiver || comps.Backfill {
		if p.mgr, err = p.connectionManager(ctx, log.Named("connections"), reg); err != nil {
			return nil, err
		}
		p.mgr.SetSyncRequester(requester)
	}
	if comps.Backfill {
		leases, err := lease.Open(ctx, p.js, backfill.LeaseBucket, owner(), backfill.LeaseTTL, cfg.NATSReplicas)
		if err != nil {
			return nil, err
		}
		w := backfill.New(backfill.Config{IncrementalEvery: cfg.BackfillIncrementalEvery, MaxConcurrentSyncs: cfg.BackfillMaxSyncs,
			BacklogConsumer: normalizer.ConsumerName}, backfill.Deps{JS: p.js, Store: p.store, Clients: p.mgr, Leases: leases,
			Log: log.Named("backfill"), Registerer: reg, Now: p.now})
		g.Go(func() error { return w.Run(gctx) })
	}
	// Every process serves health and metrics; only the receiver serves the
	// public API and webhooks.
	var e *echo.Echo
	if comps.Receiver {
		r, err := receiver.New(receiver.Config{ClientSecret: []byte(cfg.JiraClientSecret), Ready: p.natsReady},
			p.js, p.store, apikey.NewAuthenticator(p.store, cfg.APIKeys), log.Named("receiver"), reg)
		if err != nil {
			return nil, err
		}
		r.MountConnections(p.mgr, requester)
		e = r.Echo()
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
		p.echo = e
		g.Go(func() error { return r.Run(gctx, p.ln, cfg.ShutdownTimeout) })
		// Webhook upkeep runs where webhooks arrive.
		g.Go(func() error { return p.mgr.Run(gctx) })
		log.Info("receiver listening", zap.String("addr", p.ln.Addr().String()))
	} else {
		e = echo.New()
		e.HideBanner, e.HidePort = true, true
		e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
		e.GET("/readyz", func(c echo.Context) error {
			if err := errors.Join(p.natsReady(), p.store.Ping(c.Request().Context())); err != nil {
				return c.String(http.StatusServiceUnavailable, "unavailable")
			}
			return c.String(http.StatusOK, "ready")
		})
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
		p.echo = e
		srv := &http.Server{Handler: e, ReadHeaderTimeout: 5e9}
		g.Go(func() error {
			go func() { <-gctx.Done(); _ = srv.Close() }()
			if err := srv.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	return p, nil
}

func (p *Platform) natsReady() error {
	if !p.nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	return nil
}

// Wait blocks until every service has stopped, then closes the broker
// connection, the embedded server and the store, in that order, so that
// in-flight work finishes before its dependencies go away.
func (p *Platform) Wait() error {
	err := p.group.Wait()
	p.cancel()
	p.closeInfra()
	return err
}

func (p *Platform) closeInfra() {
	if p.nc != nil {
		_ = p.nc.Drain()
		p.nc.Close()
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

// JetStream is the process's JetStream handle.
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

// ConnectNATS connects to ITSM_NATS_URL or, when that is unset, to the
// embedded server a local `itsm run` exposes on ITSM_NATS_LISTEN.
func ConnectNATS(cfg config.Config, name string) (*nats.Conn, error) {
	url := cfg.NATSURL
	if url == "" {
		url = "nats://" + cfg.NATSListen
	}
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	return nc, nil
}
