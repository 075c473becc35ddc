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
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/go-json-experiment/json/v1"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
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

	// Jira sends JSON (JIRA.md §3); anything else, or an encoding we would
	// have to expand, is refused before any work.
	if ct := req.Header.Get("Content-Type"); !isJSON(ct) {
		return reject(http.StatusUnsupportedMediaType, "unsupported_media_type", "content type must be application/json")
	}
	if ce := req.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return reject(http.StatusUnsupportedMediaType, "unsupported_encoding", "content encoding "+strconv.Quote(ce)+" is not accepted; send the body uncompressed")
	}
	if req.ContentLength > s.cfg.MaxBody {
		return reject(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body exceeds %d bytes", s.cfg.MaxBody))
	}
	deliveryID := req.Header.Get(headerWebhookID)
	if len(deliveryID) > maxDeliveryID {
		return reject(http.StatusBadRequest, "invalid_delivery_id", fmt.Sprintf("%s exceeds %d characters", headerWebhookID, maxDeliveryID))
	}
	// Verify the signature before reading the body or touching the store, so
	// unsigned traffic costs us as little as possible.
	claims, err := s.verifyJWT(req.Header.Get("Authorization"), s.cfg.Now())
	if err != nil {
		return reject(http.StatusUnauthorized, "unauthorized", err.Error())
	}
	conn, err := s.conns.LookupConnection(req.Context(), connID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !routable(conn)) {
		return reject(http.StatusNotFound, "unknown_connection", "no such connection")
	}
	if err != nil {
		s.m.webhooks.WithLabelValues(vendorJira, "store_error").Inc()
		s.log.Warn("webhook refused: connection lookup failed", zap.String("connection_id", connID), zap.Error(err))
		c.Response().Header().Set("Retry-After", "5")
		return fail(http.StatusServiceUnavailable, "unavailable", "could not check the connection; retry later")
	}
	tokenSite, err := claims.site(conn, s.cfg.TokenSiteOptional)
	if err != nil {
		return reject(http.StatusForbidden, "wrong_site", err.Error())
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, s.cfg.MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return reject(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body exceeds %d bytes", s.cfg.MaxBody))
	}
	if err != nil {
		return reject(http.StatusBadRequest, "unreadable", "could not read the body")
	}
	if !utf8.Valid(body) {
		return reject(http.StatusBadRequest, "invalid_json", "body is not valid UTF-8")
	}
	env, err := inspect(body)
	if err != nil {
		return reject(http.StatusBadRequest, "invalid_json", "body is not valid JSON")
	}
	if err := env.sameSite(conn, tokenSite); err != nil {
		return reject(http.StatusForbidden, "wrong_site", err.Error())
	}
	targets, paused, err := s.targets(req.Context(), conn, env.MatchedWebhookIDs)
	if err != nil {
		s.m.webhooks.WithLabelValues(vendorJira, "store_error").Inc()
		s.log.Warn("webhook refused: site lookup failed", zap.String("connection_id", connID), zap.Error(err))
		c.Response().Header().Set("Retry-After", "5")
		return fail(http.StatusServiceUnavailable, "unavailable", "could not check the connection; retry later")
	}
	if len(targets) == 0 && paused {
		// Jira drops a webhook that keeps failing; a paused connection
		// must find its webhook alive when it resumes.
		s.m.webhooks.WithLabelValues(vendorJira, "paused").Inc()
		return c.JSON(http.StatusAccepted, map[string]any{"status": "dropped", "reason": "connection paused", "connections": 0})
	}
	if len(targets) == 0 {
		return reject(http.StatusNotFound, "unknown_connection", "no such connection")
	}

	// Jira keeps the identifier across retries; scoping it by connection lets
	// two connections on one site each keep their copy.
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
		raw.SetHeaders(msg.Header, t.OrganizationID, t.ID, t.Vendor)
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

// targets are the ACTIVE connections a delivery belongs to. Jira allows one
// webhook URL per app per site, so connections sharing a site share the URL of
// one of them; the delivery's matchedWebhookIds say whose webhook matched. The
// path's connection may itself be deleted while others on its site live on.
// paused tells that the delivery belonged to a PAUSED connection only.
func (s *Server) targets(ctx context.Context, conn *store.Connection, matched []int64) (out []*store.Connection, paused bool, err error) {
	if conn.CloudID == "" {
		switch conn.State {
		case store.StateActive:
			return []*store.Connection{conn}, false, nil
		case store.StatePaused:
			return nil, true, nil
		}
		return nil, false, nil
	}
	peers, err := s.sites.SiteConnections(ctx, conn.CloudID)
	if err != nil {
		return nil, false, fmt.Errorf("connections of site: %w", err)
	}
	for _, p := range peers {
		if p.State != store.StateActive && p.State != store.StatePaused {
			continue
		}
		if len(matched) == 0 || ownsAny(p, matched) || (p.ID == conn.ID && len(p.Detail.Webhooks) == 0) {
			if p.State == store.StatePaused {
				paused = true
				continue
			}
			out = append(out, p)
		}
	}
	return out, paused, nil
}

// routable tells whether deliveries to the connection's URL can reach any
// connection: a PENDING one has no consented site, and a DELETED one only
// routes to the other connections of its site.
func routable(c *store.Connection) bool {
	switch c.State {
	case store.StateActive, store.StatePaused:
		return true
	case store.StateDeleted:
		return c.CloudID != ""
	}
	return false
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

// verifyJWT checks a dynamic-webhook delivery's Bearer JWT: the HMAC
// signature with the algorithm pinned to HMAC (a token cannot pick "none" or
// an asymmetric key), an exp that is present and near (a leaked token is
// good for minutes, not forever) and nbf when present.
func (s *Server) verifyJWT(authz string, now time.Time) (*deliveryClaims, error) {
	token, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || token == "" {
		return nil, errors.New("missing Bearer token")
	}
	var claims deliveryClaims
	_, err := s.jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return s.cfg.ClientSecret, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return nil, errors.New("token has no exp")
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, errors.New("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, errors.New("token not valid yet (nbf)")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, errors.New("bad token signature")
	default:
		return nil, errors.New("invalid token")
	}
	if claims.ExpiresAt.Sub(now) > s.cfg.MaxTokenLifetime+jwtLeeway {
		return nil, fmt.Errorf("token expires more than %v ahead", s.cfg.MaxTokenLifetime)
	}
	return &claims, nil
}

// jwtLeeway absorbs clock skew between Jira and us.
const jwtLeeway = time.Minute

// maxDeliveryID bounds X-Atlassian-Webhook-Identifier: it becomes part of a
// JetStream message id that the dedupe window keeps for hours.
const maxDeliveryID = 256

// deliveryClaims are the claims the receiver reads. Jira's are undocumented
// (JIRA.md §3); the Jira simulator, like Atlassian's context JWTs, names the
// site in context.cloudId.
type deliveryClaims struct {
	jwt.RegisteredClaims
	Context struct {
		CloudID string `json:"cloudId"`
	} `json:"context"`
}

// site tells whether the token proves the delivery's site: it must name
// the connection's, so that a token one site sent cannot carry a delivery
// into another site's connection. A connection whose cloud id is not known,
// or with optional set a token naming no site, leaves the check to the
// body's self URLs.
func (t *deliveryClaims) site(conn *store.Connection, optional bool) (proved bool, err error) {
	switch {
	case conn.CloudID == "":
		return false, nil
	case t.Context.CloudID == "" && optional:
		return false, nil
	case t.Context.CloudID == "":
		return false, errors.New("token names no site (context.cloudId)")
	case t.Context.CloudID != conn.CloudID:
		return false, fmt.Errorf("token is for another site than connection %s", conn.ID)
	}
	return true, nil
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
// connection because someone swapped the URL path. Unless the token already
// proved the site, a self URL must prove it: a body without one proves
// nothing.
func (e *envelope) sameSite(conn *store.Connection, tokenProved bool) error {
	proved := tokenProved
	for _, self := range []string{e.Issue.Self, e.Comment.Self} {
		if self == "" {
			continue
		}
		if !SameSite(conn, self) {
			return fmt.Errorf("delivery is for another site than connection %s", conn.ID)
		}
		proved = true
	}
	if !proved {
		return errors.New("delivery names no site: want issue.self or comment.self")
	}
	return nil
}

// isJSON accepts application/json with or without parameters.
func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
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
