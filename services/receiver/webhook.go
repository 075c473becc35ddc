package receiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// Headers Jira sets on deliveries (JIRA.md §3).
const (
	headerWebhookID    = "X-Atlassian-Webhook-Identifier"
	headerWebhookRetry = "X-Atlassian-Webhook-Retry"
)

const vendorJira = "jira"

// jiraWebhook accepts a delivery only once JetStream has acknowledged it, so
// a 2xx is a promise that nothing will be lost; any failure before that gets
// a status Jira retries (5xx) or a 4xx naming the problem.
func (s *Server) jiraWebhook(c echo.Context) error {
	start := time.Now()
	req := c.Request()
	connID := c.Param("connection_id")
	reject := func(status int, reason, msg string) error {
		s.m.webhooks.WithLabelValues(vendorJira, reason).Inc()
		return fail(status, reason, msg)
	}

	if ct := req.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return reject(http.StatusUnsupportedMediaType, "unsupported_media_type", "content type must be application/json")
	}
	if req.ContentLength > s.cfg.MaxBody {
		return reject(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body exceeds %d bytes", s.cfg.MaxBody))
	}
	// Verify the signature before reading the body or touching the store, so
	// unsigned traffic costs us as little as possible.
	if err := s.verifyJWT(req.Header.Get("Authorization")); err != nil {
		return reject(http.StatusUnauthorized, "unauthorized", err.Error())
	}
	conn, err := s.conns.LookupConnection(req.Context(), connID)
	if errors.Is(err, store.ErrNotFound) {
		return reject(http.StatusNotFound, "unknown_connection", "no such connection")
	}
	if err != nil {
		s.m.webhooks.WithLabelValues(vendorJira, "store_error").Inc()
		s.log.Warn("webhook refused: connection lookup failed", zap.String("connection_id", connID), zap.Error(err))
		c.Response().Header().Set("Retry-After", "5")
		return fail(http.StatusServiceUnavailable, "unavailable", "could not check the connection; retry later")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, s.cfg.MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return reject(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body exceeds %d bytes", s.cfg.MaxBody))
	}
	if err != nil {
		return reject(http.StatusBadRequest, "unreadable", "could not read the body")
	}
	env, err := inspect(body)
	if err != nil {
		return reject(http.StatusBadRequest, "invalid_json", "body is not valid JSON")
	}
	if !env.sameSite(conn) {
		return reject(http.StatusForbidden, "wrong_site", fmt.Sprintf("delivery is for another site than connection %s", conn.ID))
	}
	targets, err := s.targets(req.Context(), conn, env.MatchedWebhookIDs)
	if err != nil {
		s.m.webhooks.WithLabelValues(vendorJira, "store_error").Inc()
		s.log.Warn("webhook refused: site lookup failed", zap.String("connection_id", connID), zap.Error(err))
		c.Response().Header().Set("Retry-After", "5")
		return fail(http.StatusServiceUnavailable, "unavailable", "could not check the connection; retry later")
	}
	if len(targets) == 0 {
		return reject(http.StatusNotFound, "unknown_connection", "no such connection")
	}

	// Jira keeps the identifier across retries; scoping it by connection lets
	// two connections on one site each keep their copy.
	deliveryID := req.Header.Get(headerWebhookID)
	if deliveryID == "" {
		sum := sha256.Sum256(body)
		deliveryID = "sha256-" + hex.EncodeToString(sum[:])
	}
	ctx, cancel := context.WithTimeout(req.Context(), s.cfg.PublishTimeout)
	defer cancel()
	result := "duplicate"
	var seq uint64
	for _, t := range targets {
		msg := nats.NewMsg(broker.RawSubject(vendorJira, t.ID, broker.SourceWebhook))
		msg.Data = body
		msg.Header.Set(itsm.HeaderOrganization, t.OrganizationID)
		msg.Header.Set(itsm.HeaderConnection, t.ID)
		msg.Header.Set(itsm.HeaderVendor, "JIRA")
		msg.Header.Set(itsm.HeaderReceivedAt, fmt.Sprint(start.UnixNano()))
		if r := req.Header.Get(headerWebhookRetry); r != "" {
			msg.Header.Set(headerWebhookRetry, r)
		}
		// Scoping Jira's identifier by connection lets each connection of a
		// shared site keep its copy, while Jira's retries are dropped.
		ack, err := s.pub.PublishMsg(ctx, msg, jetstream.WithMsgID(t.ID+":"+deliveryID), jetstream.WithExpectStream(broker.StreamRaw))
		if err != nil {
			s.m.webhooks.WithLabelValues(vendorJira, "unavailable").Inc()
			s.log.Warn("webhook not published", zap.String("connection_id", t.ID),
				zap.String("organization_id", t.OrganizationID), zap.Error(err))
			c.Response().Header().Set("Retry-After", "5")
			return fail(http.StatusServiceUnavailable, "unavailable", "could not store the delivery; retry later")
		}
		if !ack.Duplicate {
			result = "accepted"
		}
		seq = ack.Sequence
	}
	s.m.publishLatency.Observe(time.Since(start).Seconds())
	s.m.webhooks.WithLabelValues(vendorJira, result).Inc()
	return c.JSON(http.StatusAccepted, map[string]any{"status": result, "sequence": seq, "connections": len(targets)})
}

// targets are the connections a delivery belongs to. Jira allows one webhook
// URL per app per site, so connections sharing a site share the URL of one of
// them; the delivery's matchedWebhookIds say whose webhook matched. The
// path's connection may itself be deleted while others on its site live on.
func (s *Server) targets(ctx context.Context, conn *store.Connection, matched []int64) ([]*store.Connection, error) {
	if conn.CloudID == "" {
		if conn.State == store.StateDeleted {
			return nil, nil
		}
		return []*store.Connection{conn}, nil
	}
	peers, err := s.sites.SiteConnections(ctx, conn.CloudID)
	if err != nil {
		return nil, fmt.Errorf("connections of site: %w", err)
	}
	var out []*store.Connection
	for _, p := range peers {
		if p.State == store.StateDeleted || p.State == store.StatePending {
			continue
		}
		if len(matched) == 0 || ownsAny(p, matched) || (p.ID == conn.ID && len(p.Detail.Webhooks) == 0) {
			out = append(out, p)
		}
	}
	return out, nil
}

func ownsAny(c *store.Connection, ids []int64) bool {
	for _, w := range c.Detail.Webhooks {
		for _, id := range ids {
			if w.ID == id {
				return true
			}
		}
	}
	return false
}

// verifyJWT checks a dynamic-webhook delivery's Bearer JWT. Its claims are
// undocumented (JIRA.md §3), so only the HMAC signature and, when present,
// exp/nbf/iat are enforced; the algorithm is pinned to HMAC so a token cannot
// pick "none" or an asymmetric key.
func (s *Server) verifyJWT(authz string) error {
	token, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || token == "" {
		return errors.New("missing Bearer token")
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256", "HS384", "HS512"}), jwt.WithLeeway(time.Minute))
	_, err := parser.Parse(token, func(*jwt.Token) (any, error) { return s.cfg.ClientSecret, nil })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrTokenExpired):
		return errors.New("token expired")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errors.New("bad token signature")
	default:
		return errors.New("invalid token")
	}
}

// envelope is what the receiver reads of a delivery. Decoding validates the
// whole body, so it is the JSON check too.
type envelope struct {
	Issue             struct{ Self string } `json:"issue"`
	Comment           struct{ Self string } `json:"comment"`
	MatchedWebhookIDs []int64               `json:"matchedWebhookIds"`
}

func inspect(body []byte) (*envelope, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || !json.Valid(body) {
			return nil, err
		}
		// Valid JSON of another shape: the normalizer reports it.
		return &envelope{}, nil
	}
	return &env, nil
}

// sameSite refuses deliveries whose records point at another site than the
// connection's: a signed delivery for tenant A must not land in tenant B's
// connection because someone swapped the URL path.
func (e *envelope) sameSite(conn *store.Connection) bool {
	if conn.SiteURL == "" && conn.CloudID == "" {
		return true
	}
	for _, self := range []string{e.Issue.Self, e.Comment.Self} {
		if self != "" && !SameSite(conn, self) {
			return false
		}
	}
	return true
}

// SameSite tells whether a record's self URL belongs to the connection's
// site, either by host or, for API-gateway URLs, by cloud id.
func SameSite(conn *store.Connection, self string) bool {
	u, err := url.Parse(self)
	if err != nil {
		return false
	}
	if cloud, ok := strings.CutPrefix(u.Path, "/ex/jira/"); ok {
		cloud, _, _ = strings.Cut(cloud, "/")
		return conn.CloudID != "" && cloud == conn.CloudID
	}
	site, err := url.Parse(conn.SiteURL)
	return err == nil && strings.EqualFold(site.Host, u.Host)
}
