package receiver

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/passthrough"
)

// queryNamer is a NativeSearcher whose query parameter is not jql.
type queryNamer interface {
	QueryParam() string
}

// maxSearchLimit bounds a native search page (Jira's page cap with fields).
const maxSearchLimit = 100

type searchResponse struct {
	Items      []connector.SearchItem `json:"items"`
	NextCursor *string                `json:"next_cursor"`
}

// nativeSearch answers GET /v1/itsm/passthrough/tickets/search: a query in
// the vendor's language (jql for Jira, sysparm_query for ServiceNow),
// narrowed to the connection's scope, paged with the vendor's cursor. The query string is bounded at the edge
// (4 KiB), which bounds the query too.
func (s *Server) nativeSearch(c echo.Context, wb *writeBack) error {
	if err := onlyParams(c, "connection_id", "jql", "sysparm_query", "cursor", "limit"); err != nil {
		return err
	}
	ctx, org := c.Request().Context(), OrganizationID(c)
	q := c.QueryParams()
	conn, err := s.connectionOf(ctx, org, q.Get("connection_id"))
	if err != nil {
		return err
	}
	searcher, err := capability(wb.Searchers, conn, "native search")
	if err != nil {
		return err
	}
	// The query is in the vendor's language, under the vendor's name for
	// it: jql (Jira) unless the searcher names another (sysparm_query for
	// ServiceNow).
	param := "jql"
	if n, ok := searcher.(queryNamer); ok {
		param = n.QueryParam()
	}
	for _, other := range []string{"jql", "sysparm_query"} {
		if other != param && q.Has(other) {
			return fail(http.StatusBadRequest, "invalid_query", other+" is not the query language of "+conn.Vendor+" connections; use "+param)
		}
	}
	query := q.Get(param)
	if query == "" {
		return fail(http.StatusBadRequest, "invalid_query", param+" is required")
	}
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSearchLimit {
			return fail(http.StatusBadRequest, "invalid_query", "limit: want an integer from 1 to "+strconv.Itoa(maxSearchLimit))
		}
		limit = n
	}
	page, err := searcher.SearchTickets(ctx, conn, query, q.Get("cursor"), limit)
	if err != nil {
		return s.writeError(c, conn, err)
	}
	resp := searchResponse{Items: page.Items}
	if resp.Items == nil {
		resp.Items = []connector.SearchItem{}
	}
	// created_at and updated_at are the platform's record of a ticket: the
	// stored one's where there is one (the mapping alone cannot know them).
	for _, it := range resp.Items {
		if it.Ticket == nil {
			continue
		}
		if d, err := s.store.Get(ctx, org, itsm.KindTicket, it.Ticket.ID); err == nil {
			var stored struct {
				CreatedAt time.Time `json:"created_at"`
				UpdatedAt time.Time `json:"updated_at"`
			}
			if json.Unmarshal(d.Body, &stored) == nil {
				it.Ticket.CreatedAt, it.Ticket.UpdatedAt = stored.CreatedAt, stored.UpdatedAt
			}
		}
	}
	if page.NextCursor != "" {
		resp.NextCursor = &page.NextCursor
	}
	return c.JSON(http.StatusOK, resp)
}

// PassthroughAnswer is the vendor's answer as it came: its status, the
// headers a client needs (rate limits, redirects), and its body (JSON as
// JSON, anything else as a string).
type PassthroughAnswer struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    any               `json:"body"`
}

// maxPassthroughRequest bounds the request to the API, as every API body
// is bounded at the edge; the vendor body inside it is bounded again by
// Limits.MaxBody.
const maxPassthroughRequest = maxAPIBody

// passthrough answers POST /v1/connections/{id}/passthrough. Every call is
// logged (never its bodies or query, which may hold customer data) and
// counted per organization.
func (s *Server) passthrough(c echo.Context, wb *writeBack) error {
	if err := onlyParams(c); err != nil {
		return err
	}
	ctx, org := c.Request().Context(), OrganizationID(c)
	conn, err := s.connectionOf(ctx, org, c.Param("id"))
	if err != nil {
		return err
	}
	pt, err := capability(wb.Passthroughs, conn, "passthrough")
	if err != nil {
		return err
	}
	body, err := readLimited(c, maxPassthroughRequest)
	if err != nil {
		return err
	}
	// Read strictly: a member the platform ignored ("headers", "url") would
	// let a client believe it was sent.
	f, err := readFields(body, "method", "path", "query", "body")
	if err != nil {
		return err
	}
	for _, name := range []string{"method", "path"} {
		if _, err := f.str(name); err != nil {
			return err
		}
	}
	if q, ok := f["query"]; ok && !f.null("query") && jsontext.Value(q).Kind() != '{' {
		return fail(http.StatusBadRequest, "invalid_query", "query: want an object of strings, numbers or booleans")
	}
	var req passthrough.Request
	if err := json.Unmarshal(body, &req); err != nil {
		return fail(http.StatusBadRequest, "invalid_body", "body must be {method, path, query, body}")
	}
	start := time.Now()
	resp, err := pt.Passthrough(ctx, conn, req, wb.Limits)
	log := s.log.With(zap.String("organization_id", org), zap.String("connection_id", conn.ID),
		zap.String("method", req.Method), zap.String("path", safePath(req.Path)), zap.Duration("took", time.Since(start)))
	switch {
	case errors.Is(err, passthrough.ErrRefused):
		wb.passCalls.WithLabelValues(org, "refused").Inc()
		log.Info("passthrough refused", zap.Error(err))
		return fail(http.StatusBadRequest, "passthrough_refused", err.Error())
	case errors.Is(err, passthrough.ErrTooLarge):
		wb.passCalls.WithLabelValues(org, "too_large").Inc()
		log.Info("passthrough answer too large")
		return fail(http.StatusBadGateway, "vendor_answer_too_large", err.Error())
	case err != nil:
		wb.passCalls.WithLabelValues(org, "error").Inc()
		log.Warn("passthrough failed", zap.Error(err))
		return fail(http.StatusBadGateway, "vendor_unavailable", "the vendor did not answer; try again later")
	}
	wb.passCalls.WithLabelValues(org, strconv.Itoa(resp.Status/100)+"xx").Inc()
	log.Info("passthrough", zap.Int("status", resp.Status))
	out := PassthroughAnswer{Status: resp.Status, Headers: map[string]string{}}
	for k := range resp.Header {
		out.Headers[k] = resp.Header.Get(k)
	}
	if ct := resp.ContentType; ct != "" {
		out.Headers["Content-Type"] = ct
	}
	switch {
	case resp.JSON():
		out.Body = json.RawMessage(resp.Body)
	case len(resp.Body) > 0:
		out.Body = string(resp.Body)
	}
	return c.JSON(http.StatusOK, out)
}

// safePath is a path for the log: bounded, and quoted by zap.
func safePath(p string) string {
	if len(p) > 200 {
		return p[:200] + "…"
	}
	return p
}
