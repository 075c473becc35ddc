package receiver

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/labstack/echo/v4"

	"github.com/itsmhub/itsm/pkg/apikey"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// OrganizationID returns the organization the request was authenticated as.
func OrganizationID(c echo.Context) string {
	org, _ := c.Get("organization_id").(string)
	return org
}

func (s *Server) requireAPIKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Header.Get("X-API-Key")
		if key == "" {
			return fail(http.StatusUnauthorized, "unauthorized", "missing X-API-Key header")
		}
		org, err := s.auth.Authenticate(c.Request().Context(), key)
		if errors.Is(err, apikey.ErrUnknown) {
			return fail(http.StatusUnauthorized, "unauthorized", "invalid API key")
		}
		if err != nil {
			return err
		}
		if err := s.rates.allow(c, org); err != nil {
			return err
		}
		c.Set("organization_id", org)
		return next(c)
	}
}

// plural names of the API's collections.
var collections = map[string]itsm.Kind{
	"tickets": itsm.KindTicket, "projects": itsm.KindProject, "comments": itsm.KindComment,
	"attachments": itsm.KindAttachment, "users": itsm.KindUser, "groups": itsm.KindGroup,
}

// filters accepted per kind; anything else is a 400 rather than being
// silently ignored, so a typo never looks like an empty result.
var filtersByKind = map[itsm.Kind][]string{
	itsm.KindTicket:     {"status", "priority", "project_id", "assigned_user_id", "identifier", "connection_id", "updated_since"},
	itsm.KindProject:    {"status", "identifier", "connection_id", "updated_since"},
	itsm.KindComment:    {"status", "ticket_id", "connection_id", "updated_since"},
	itsm.KindAttachment: {"status", "ticket_id", "connection_id", "updated_since"},
	itsm.KindUser:       {"status", "email", "connection_id", "updated_since"},
	itsm.KindGroup:      {"status", "connection_id", "updated_since"},
}

func (s *Server) routeReadAPI(g *echo.Group) {
	for name, kind := range collections {
		g.GET("/itsm/"+name, s.listHandler(kind))
		g.GET("/itsm/"+name+"/:id", s.getHandler(kind))
	}
	g.GET("/itsm/tickets/by-identifier/:identifier", s.getByIdentifier)
}

type listResponse struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor *string           `json:"next_cursor"`
}

func (s *Server) listHandler(kind itsm.Kind) echo.HandlerFunc {
	allowed := map[string]bool{"cursor": true, "limit": true}
	for _, f := range filtersByKind[kind] {
		allowed[f] = true
	}
	return func(c echo.Context) error {
		q := c.QueryParams()
		for k := range q {
			if !allowed[k] {
				return fail(http.StatusBadRequest, "invalid_filter", "unknown query parameter "+strconv.Quote(k)+" for "+string(kind)+"s")
			}
		}
		f := store.Filter{
			OrganizationID: OrganizationID(c), Kind: kind,
			ConnectionID: q.Get("connection_id"), Status: q.Get("status"), Priority: q.Get("priority"),
			ProjectID: q.Get("project_id"), TicketID: q.Get("ticket_id"), AssignedUserID: q.Get("assigned_user_id"),
			Identifier: q.Get("identifier"), Cursor: q.Get("cursor"),
		}
		if v := q.Get("status"); v != "" {
			st, err := parseStatusFilter(kind, v)
			if err != nil {
				return fail(http.StatusBadRequest, "invalid_filter", "status: "+err.Error())
			}
			f.Status = st
		}
		if v := q.Get("email"); v != "" {
			// Users' identifier is their lower-cased email address.
			f.Identifier = strings.ToLower(v)
		}
		if v := q.Get("priority"); v != "" {
			p, err := itsm.ParsePriority(v)
			if err != nil {
				return fail(http.StatusBadRequest, "invalid_filter", "priority: "+err.Error())
			}
			f.Priority = string(p)
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > store.MaxLimit {
				return fail(http.StatusBadRequest, "invalid_filter", "limit: want an integer from 1 to "+strconv.Itoa(store.MaxLimit))
			}
			f.Limit = n
		}
		if v := q.Get("updated_since"); v != "" {
			t, err := parseSince("updated_since", v, time.Now())
			if err != nil {
				return err
			}
			f.UpdatedSince = t
		}
		page, err := s.store.List(c.Request().Context(), f)
		if errors.Is(err, store.ErrInvalid) {
			return fail(http.StatusBadRequest, "invalid_cursor", "cursor: malformed or from another query")
		}
		if err != nil {
			return err
		}
		resp := listResponse{Items: make([]json.RawMessage, 0, len(page.Docs))}
		for _, d := range page.Docs {
			resp.Items = append(resp.Items, d.Body)
		}
		if page.NextCursor != "" {
			resp.NextCursor = &page.NextCursor
		}
		return c.JSON(http.StatusOK, resp)
	}
}

func (s *Server) getHandler(kind itsm.Kind) echo.HandlerFunc {
	return func(c echo.Context) error {
		d, err := s.store.Get(c.Request().Context(), OrganizationID(c), kind, c.Param("id"))
		if err != nil {
			return err
		}
		return c.JSONBlob(http.StatusOK, d.Body)
	}
}

// parseStatusFilter checks a status filter against the kind's enum.
func parseStatusFilter(kind itsm.Kind, v string) (string, error) {
	if kind == itsm.KindTicket {
		st, err := itsm.ParseStatus(v)
		return string(st), err
	}
	st, err := itsm.ParseObjectStatus(v)
	return string(st), err
}

// getByIdentifier answers the ticket with a human key; keys are unique only
// per connection, so connection_id picks the connection's one.
func (s *Server) getByIdentifier(c echo.Context) error {
	q := c.QueryParams()
	for k := range q {
		if k != "connection_id" {
			return fail(http.StatusBadRequest, "invalid_filter", "unknown query parameter "+strconv.Quote(k)+" for tickets/by-identifier")
		}
	}
	ctx, org, key := c.Request().Context(), OrganizationID(c), c.Param("identifier")
	if conn := q.Get("connection_id"); conn != "" {
		page, err := s.store.List(ctx, store.Filter{OrganizationID: org, Kind: itsm.KindTicket, ConnectionID: conn, Identifier: key, Limit: 1})
		if err != nil {
			return err
		}
		if len(page.Docs) == 0 {
			return fmt.Errorf("ticket %s of connection %s: %w", key, conn, store.ErrNotFound)
		}
		return c.JSONBlob(http.StatusOK, page.Docs[0].Body)
	}
	d, err := s.store.GetByIdentifier(ctx, org, itsm.KindTicket, key)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, d.Body)
}
