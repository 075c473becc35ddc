// Package receiver is the platform's only public HTTP surface: vendors'
// webhook deliveries, the read API and health endpoints.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// Publisher is the part of JetStream the receiver needs.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Store is the part of the store the receiver reads.
type Store interface {
	LookupConnection(ctx context.Context, id string) (*store.Connection, error)
	FindConnections(ctx context.Context, q store.ConnectionQuery) ([]*store.Connection, error)
	PageConnections(ctx context.Context, q store.ConnectionPageQuery) (store.ConnectionPage, error)
	CountConnections(ctx context.Context, orgID string) (int, error)
	Get(ctx context.Context, orgID string, kind itsm.Kind, id string) (*store.Document, error)
	GetByIdentifier(ctx context.Context, orgID string, kind itsm.Kind, identifier string) (*store.Document, error)
	List(ctx context.Context, f store.Filter) (store.Page, error)
	Ping(ctx context.Context) error
}

// Authenticator resolves an API key to the organization it belongs to; an
// unknown key is apikey.ErrUnknown.
type Authenticator interface {
	Authenticate(ctx context.Context, apiKey string) (orgID string, err error)
}

// Config of the receiver.
type Config struct {
	Addr string
	// Verifiers authenticate each vendor's webhook deliveries, by vendor
	// name (store.Connection.Vendor): the receiver serves
	// POST /webhooks/<vendor token>/:connection_id for each.
	Verifiers map[string]DeliveryVerifier
	// MaxBody bounds a delivery (default broker.MaxRecord, far below NATS's
	// max_payload, so a larger body is a 413, never a failed publish);
	// vendors' bodies are far smaller.
	MaxBody        int64
	PublishTimeout time.Duration
	// ConnectionTTL bounds how long a connection change (a deletion) takes
	// to reach webhook routing.
	ConnectionTTL time.Duration
	// Quotas are the API's per-organization limits; zero means the
	// defaults.
	Quotas config.Quotas
	// ConnectionEndpoints are vendors' reads of a connection, mounted with
	// the connections API.
	ConnectionEndpoints []ConnectionEndpoint
	// Ingest, when set, is told of every webhook request in flight, so
	// that work sharing this process can give way to ingest (ingest.Gate).
	Ingest IngestMeter
}

// IngestMeter counts the webhook requests in flight.
type IngestMeter interface {
	Begin()
	End()
}

// Server is the receiver.
type Server struct {
	cfg   Config
	pub   Publisher
	store Store
	conns *store.ConnectionCache
	sites *store.SiteCache
	auth  Authenticator
	log   *zap.Logger
	m     *metrics
	echo  *echo.Echo
	rates *orgLimiters
	// syncs follows deliveries that are only hints (connector.SyncHint);
	// set by MountConnections.
	syncs SyncRequester
}

// New builds the receiver and its routes. Routes may be added by other
// packages through Echo() before Run.
func New(cfg Config, pub Publisher, st Store, auth Authenticator, log *zap.Logger, reg Registerer) (*Server, error) {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = broker.MaxRecord
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 5 * time.Second
	}
	if cfg.ConnectionTTL <= 0 {
		cfg.ConnectionTTL = 5 * time.Second
	}
	if cfg.Quotas == (config.Quotas{}) {
		cfg.Quotas = config.DefaultQuotas()
	}
	if len(cfg.Verifiers) == 0 {
		return nil, errors.New("receiver: a delivery verifier of at least one vendor is required")
	}
	for vendor := range cfg.Verifiers {
		if vendor == "" || vendor != strings.ToUpper(vendor) || strings.ContainsAny(vendor, "/.: ") {
			return nil, fmt.Errorf("receiver: vendor name %q: want the upper-case name connections store", vendor)
		}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, pub: pub, store: st, auth: auth, log: log, m: m,
		conns: store.NewConnectionCache(st.LookupConnection, cfg.ConnectionTTL, nil),
		sites: store.NewSiteCache(st.FindConnections, cfg.ConnectionTTL, nil),
		rates: newOrgLimiters(cfg.Quotas.APIRate, cfg.Quotas.APIBurst)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.edge)
	e.GET("/openapi.json", s.openapi)
	for vendor, v := range cfg.Verifiers {
		rt := newWebhookRoute(vendor, v)
		e.POST("/webhooks/"+rt.token+"/:connection_id", s.webhook(rt))
	}
	api := e.Group("/v1", s.requireAPIKey)
	s.routeReadAPI(api)
	s.echo = e
	return s, nil
}

// Echo exposes the router so that other components mount their routes.
func (s *Server) Echo() *echo.Echo { return s.echo }

// Run serves until ctx is cancelled, then stops accepting, lets in-flight
// requests finish (each waits for its JetStream ack) and returns.
func (s *Server) Run(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	srv := &http.Server{
		Handler: s.echo,
		// Slow clients must not hold connections forever (slow-loris).
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("receiver: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("receiver shutdown: %w", err)
	}
	return nil
}
