package receiver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
)

// DeliveryVerifier authenticates one vendor's webhook deliveries, on the
// route POST /webhooks/<vendor>/:connection_id. The wiring gives one per
// vendor (Config.Verifiers); the receiver imports no vendor.
type DeliveryVerifier interface {
	// Headers names the vendor's delivery identifier header, which the
	// vendor keeps across retries (RAW's dedupe key; "" when it has none,
	// and the body's hash stands in), and its retry count header, copied
	// into RAW ("" when none).
	Headers() (deliveryID, retry string)
	// Authenticate checks what the headers alone prove, before the
	// connection is looked up or the body read, so that unsigned traffic
	// costs little (Jira: the JWT signed with the app's secret; ServiceNow:
	// that its HMAC header is there). Errors are connector.DeliveryErrors;
	// one of no other kind is answered like ErrUnauthenticated (401).
	Authenticate(h http.Header) (connector.Delivery, error)
}

// webhookRoute is one vendor's delivery endpoint.
type webhookRoute struct {
	vendor      string // store.Connection.Vendor
	token       string // the RAW subject's and the path's vendor token
	verifier    DeliveryVerifier
	idHeader    string
	retryHeader string
}

func newWebhookRoute(vendor string, v DeliveryVerifier) *webhookRoute {
	id, retry := v.Headers()
	return &webhookRoute{vendor: vendor, token: broker.VendorToken(vendor), verifier: v, idHeader: id, retryHeader: retry}
}

// webhook accepts a delivery only once JetStream has acknowledged it, so a
// 2xx is a promise that nothing will be lost; any failure before that gets
// a status the vendor retries (5xx) or a 4xx naming the problem.
func (s *Server) webhook(rt *webhookRoute) echo.HandlerFunc {
	return func(c echo.Context) error { return s.deliver(c, rt) }
}

func (s *Server) deliver(c echo.Context, rt *webhookRoute) error {
	if s.cfg.Ingest != nil {
		s.cfg.Ingest.Begin()
		defer s.cfg.Ingest.End()
	}
	start := time.Now()
	req := c.Request()
	connID := c.Param("connection_id")
	reject := func(status int, reason, msg string) error {
		s.m.webhooks.WithLabelValues(rt.token, reason).Inc()
		return fail(status, reason, msg)
	}
	refuse := func(err error) error {
		switch {
		case errors.Is(err, connector.ErrWrongSite):
			return reject(http.StatusForbidden, "wrong_site", err.Error())
		case errors.Is(err, connector.ErrInvalidBody):
			return reject(http.StatusBadRequest, "invalid_json", err.Error())
		}
		return reject(http.StatusUnauthorized, "unauthorized", err.Error())
	}

	// Vendors send JSON; anything else, or an encoding we would have to
	// expand, is refused before any work.
	if ct := req.Header.Get("Content-Type"); !isJSON(ct) {
		return reject(http.StatusUnsupportedMediaType, "unsupported_media_type", "content type must be application/json")
	}
	if ce := req.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return reject(http.StatusUnsupportedMediaType, "unsupported_encoding", "content encoding "+strconv.Quote(ce)+" is not accepted; send the body uncompressed")
	}
	if req.ContentLength > s.cfg.MaxBody {
		return reject(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body exceeds %d bytes", s.cfg.MaxBody))
	}
	var deliveryID string
	if rt.idHeader != "" {
		deliveryID = req.Header.Get(rt.idHeader)
	}
	if len(deliveryID) > maxDeliveryID {
		return reject(http.StatusBadRequest, "invalid_delivery_id", fmt.Sprintf("%s exceeds %d characters", rt.idHeader, maxDeliveryID))
	}
	// Verify the signature before reading the body or touching the store, so
	// unsigned traffic costs us as little as possible.
	delivery, err := rt.verifier.Authenticate(req.Header)
	if err != nil {
		return refuse(err)
	}
	conn, err := s.conns.LookupConnection(req.Context(), connID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (!routable(conn) || conn.Vendor != rt.vendor)) {
		return reject(http.StatusNotFound, "unknown_connection", "no such connection")
	}
	if err != nil {
		s.m.webhooks.WithLabelValues(rt.token, "store_error").Inc()
		s.log.Warn("webhook refused: connection lookup failed", zap.String("connection_id", connID), zap.Error(err))
		c.Response().Header().Set("Retry-After", "5")
		return fail(http.StatusServiceUnavailable, "unavailable", "could not check the connection; retry later")
	}
	if err := delivery.CheckConnection(conn); err != nil {
		return refuse(err)
	}
	body, err := s.readBody(c.Response(), req)
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
	matched, err := delivery.CheckBody(conn, body)
	if err != nil {
		return refuse(err)
	}
	targets, paused, err := s.targets(req.Context(), conn, matched)
	if err != nil {
		s.m.webhooks.WithLabelValues(rt.token, "store_error").Inc()
		s.log.Warn("webhook refused: site lookup failed", zap.String("connection_id", connID), zap.Error(err))
		c.Response().Header().Set("Retry-After", "5")
		return fail(http.StatusServiceUnavailable, "unavailable", "could not check the connection; retry later")
	}
	if len(targets) == 0 && paused {
		// A vendor drops a webhook that keeps failing; a paused connection
		// must find its webhook alive when it resumes.
		s.m.webhooks.WithLabelValues(rt.token, "paused").Inc()
		return c.JSON(http.StatusAccepted, map[string]any{"status": "dropped", "reason": "connection paused", "connections": 0})
	}
	if len(targets) == 0 {
		return reject(http.StatusNotFound, "unknown_connection", "no such connection")
	}

	// The vendor keeps the identifier across retries; scoping it by
	// connection lets two connections on one site each keep their copy.
	if deliveryID == "" {
		sum := sha256.Sum256(body)
		deliveryID = "sha256-" + hex.EncodeToString(sum[:])
	}
	ctx, cancel := context.WithTimeout(req.Context(), s.cfg.PublishTimeout)
	defer cancel()
	result := "duplicate"
	var seq uint64
	for _, t := range targets {
		msg := nats.NewMsg(broker.RawSubject(rt.token, t.ID, broker.SourceWebhook))
		msg.Data = body
		raw.SetHeaders(msg.Header, t.OrganizationID, t.ID, t.Vendor)
		msg.Header.Set(itsm.HeaderReceivedAt, strconv.FormatInt(start.UnixNano(), 10))
		if rt.retryHeader != "" {
			if r := req.Header.Get(rt.retryHeader); r != "" {
				msg.Header.Set(rt.retryHeader, r)
			}
		}
		// Scoping the vendor's identifier by connection lets each connection
		// of a shared site keep its copy, while the vendor's retries are
		// dropped.
		ack, err := s.pub.PublishMsg(ctx, msg, jetstream.WithMsgID(t.ID+":"+deliveryID), jetstream.WithExpectStream(broker.StreamRaw))
		if err != nil {
			s.m.webhooks.WithLabelValues(rt.token, "unavailable").Inc()
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
	if h, ok := delivery.(connector.SyncHint); ok && h.WantsSync() {
		s.followHint(req.Context(), rt, targets)
	}
	s.m.publishLatency.Observe(time.Since(start).Seconds())
	s.m.webhooks.WithLabelValues(rt.token, result).Inc()
	return c.JSONBlob(http.StatusAccepted, acceptedBody(result, seq, len(targets)))
}

// acceptedBody is {"status":…,"sequence":…,"connections":…}, as c.JSON
// would render it from a map, without reflection on every delivery.
func acceptedBody(status string, seq uint64, conns int) []byte {
	b := make([]byte, 0, 64)
	b = append(b, `{"connections":`...)
	b = strconv.AppendInt(b, int64(conns), 10)
	b = append(b, `,"sequence":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"status":"`...)
	b = append(b, status...)
	return append(b, "\"}\n"...)
}

// readBody reads a body of a known length into one buffer of that size;
// one of unknown length (chunked) is read up to MaxBody.
func (s *Server) readBody(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	if n := req.ContentLength; n >= 0 && n <= s.cfg.MaxBody {
		body := make([]byte, n)
		if _, err := io.ReadFull(req.Body, body); err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
		return body, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, req.Body, s.cfg.MaxBody))
}

// followHint asks for an incremental sync of each connection a hint-only
// delivery was stored for. A failure is logged, not answered: the delivery
// is stored, and the periodic incremental sync reads the change anyway.
func (s *Server) followHint(ctx context.Context, rt *webhookRoute, targets []*store.Connection) {
	if s.syncs == nil {
		return
	}
	for _, t := range targets {
		if err := s.syncs.RequestSync(ctx, t.ID, store.SyncIncremental); err != nil {
			s.log.Warn("could not request the sync a hint asks for", zap.String("vendor", rt.token),
				zap.String("connection_id", t.ID), zap.String("organization_id", t.OrganizationID), zap.Error(err))
		}
	}
}

// targets are the ACTIVE connections a delivery belongs to. Jira allows one
// webhook URL per app per site, so connections sharing a site (cloud id)
// share the URL of one of them; the webhook ids the delivery matched say
// whose webhook matched. The
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

// maxDeliveryID bounds a delivery identifier: it becomes part of a
// JetStream message id that the dedupe window keeps for hours.
const maxDeliveryID = 256

// isJSON accepts application/json with or without parameters.
func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}
