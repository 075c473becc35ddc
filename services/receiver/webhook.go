package receiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

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
	// HeaderReceivedAt carries when the receiver accepted a delivery, in Unix
	// nanoseconds, so end-to-end latency can be measured downstream.
	HeaderReceivedAt = "Itsm-Received-At"
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
	if errors.Is(err, store.ErrNotFound) || (err == nil && conn.State == store.StateDeleted) {
		return reject(http.StatusNotFound, "unknown_connection", "no such connection")
	}
	if err != nil {
		s.m.webhooks.WithLabelValues(vendorJira, "store_error").Inc()
		return fmt.Errorf("look up connection %s: %w", connID, err)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, s.cfg.MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return reject(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body exceeds %d bytes", s.cfg.MaxBody))
	}
	if err != nil {
		return reject(http.StatusBadRequest, "unreadable", "could not read the body")
	}
	if err := checkBody(conn, body); errors.Is(err, errInvalidJSON) {
		return reject(http.StatusBadRequest, "invalid_json", "body is not valid JSON")
	} else if err != nil {
		return reject(http.StatusForbidden, "wrong_site", err.Error())
	}

	// Jira keeps the identifier across retries; scoping it by connection lets
	// two connections on one site each keep their copy.
	deliveryID := req.Header.Get(headerWebhookID)
	if deliveryID == "" {
		sum := sha256.Sum256(body)
		deliveryID = "sha256-" + hex.EncodeToString(sum[:])
	}
	msg := nats.NewMsg(broker.RawSubject(vendorJira, conn.ID, broker.SourceWebhook))
	msg.Data = body
	msg.Header.Set(itsm.HeaderOrganization, conn.OrganizationID)
	msg.Header.Set(itsm.HeaderConnection, conn.ID)
	msg.Header.Set(itsm.HeaderVendor, "JIRA")
	msg.Header.Set(HeaderReceivedAt, fmt.Sprint(start.UnixNano()))
	if r := req.Header.Get(headerWebhookRetry); r != "" {
		msg.Header.Set(headerWebhookRetry, r)
	}
	ctx, cancel := context.WithTimeout(req.Context(), s.cfg.PublishTimeout)
	defer cancel()
	ack, err := s.pub.PublishMsg(ctx, msg, jetstream.WithMsgID(conn.ID+":"+deliveryID), jetstream.WithExpectStream(broker.StreamRaw))
	if err != nil {
		s.m.webhooks.WithLabelValues(vendorJira, "unavailable").Inc()
		s.log.Warn("webhook not published", zap.String("connection_id", conn.ID),
			zap.String("organization_id", conn.OrganizationID), zap.Error(err))
		c.Response().Header().Set("Retry-After", "5")
		return fail(http.StatusServiceUnavailable, "unavailable", "could not store the delivery; retry later")
	}
	s.m.publishLatency.Observe(time.Since(start).Seconds())
	result := "accepted"
	if ack.Duplicate {
		result = "duplicate"
	}
	s.m.webhooks.WithLabelValues(vendorJira, result).Inc()
	return c.JSON(http.StatusAccepted, map[string]any{"status": result, "sequence": ack.Sequence})
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

var errInvalidJSON = errors.New("invalid JSON")

// checkBody validates the JSON and refuses deliveries whose records point at
// another site than the connection's: a signed delivery for tenant A must not
// land in tenant B's connection because someone swapped the URL path. One
// pass over the body does both, since decoding validates.
func checkBody(conn *store.Connection, body []byte) error {
	if conn.SiteURL == "" && conn.CloudID == "" {
		if !json.Valid(body) {
			return errInvalidJSON
		}
		return nil
	}
	var env struct {
		Issue   struct{ Self string } `json:"issue"`
		Comment struct{ Self string } `json:"comment"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return errInvalidJSON
		}
		return nil // a valid body of another shape is the normalizer's to report
	}
	for _, self := range []string{env.Issue.Self, env.Comment.Self} {
		if self != "" && !SameSite(conn, self) {
			return fmt.Errorf("delivery is for another site than connection %s", conn.ID)
		}
	}
	return nil
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
