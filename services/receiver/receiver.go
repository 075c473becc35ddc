// Package receiver is the platform's only public HTTP surface: Jira webhook
// deliveries, the read API and health endpoints.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
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
	// ClientSecret of the OAuth app: Jira signs dynamic-webhook deliveries
	// with it.
	ClientSecret []byte
	// MaxBody bounds a delivery (default broker.MaxRecord, far below NATS's
	// max_payload, so a larger body is a 413, never a failed publish);
	// Jira's bodies are far smaller.
	MaxBody        int64
	PublishTimeout time.Duration
	// ConnectionTTL bounds how long a connection change (a deletion) takes
	// to reach webhook routing.
	ConnectionTTL time.Duration
	// MaxTokenLifetime bounds how far ahead a delivery token's exp may lie.
	MaxTokenLifetime time.Duration
	// Now is the clock delivery tokens are checked against (time.Now when
	// nil); tests share the Jira simulator's.
	Now func() time.Time
	// TokenSiteOptional accepts a delivery token that names no site
	// (context.cloudId) and leaves the site to the body's self URLs; a
	// token naming another site is refused either way.
	TokenSiteOptional bool
	// Quotas are the API's per-organization limits; zero means the
	// defaults.
	Quotas config.Quotas
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
	jwt   *jwt.Parser
	rates *orgLimiters
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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxTokenLifetime <= 0 {
		cfg.MaxTokenLifetime = time.Hour
	}
	if cfg.Quotas == (config.Quotas{}) {
		cfg.Quotas = config.DefaultQuotas()
	}
	if len(cfg.ClientSecret) == 0 {
		return nil, errors.New("receiver: a client secret is required to verify webhooks")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, pub: pub, store: st, auth: auth, log: log, m: m,
		conns: store.NewConnectionCache(st.LookupConnection, cfg.ConnectionTTL, nil),
		sites: store.NewSiteCache(st.FindConnections, cfg.ConnectionTTL, nil),
		jwt: jwt.NewParser(jwt.WithValidMethods([]string{"HS256", "HS384", "HS512"}), jwt.WithLeeway(jwtLeeway),
			jwt.WithExpirationRequired(), jwt.WithTimeFunc(cfg.Now)),
		rates: newOrgLimiters(cfg.Quotas.APIRate, cfg.Quotas.APIBurst)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.edge)
	e.GET("/openapi.json", s.openapi)
	e.POST("/webhooks/jira/:connection_id", s.jiraWebhook)
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
