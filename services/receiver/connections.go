package receiver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/store"
)

// ConnectionService is the connection lifecycle the API exposes.
type ConnectionService interface {
	Create(ctx context.Context, orgID string, req connections.CreateRequest) (*store.Connection, string, error)
	Get(ctx context.Context, orgID, id string) (*store.Connection, error)
	Patch(ctx context.Context, orgID, id string, req connections.PatchRequest) (*store.Connection, error)
	Delete(ctx context.Context, orgID, id string, purge bool) error
	Authorize(ctx context.Context, orgID, id string) (string, error)
	Test(ctx context.Context, orgID, id string, req connections.TestRequest) (*store.Connection, error)
	Mappings(ctx context.Context, orgID, id string) (*connections.MappingReport, error)
	ConsentService
}

// ConnectionEndpoint is a read of one connection that a vendor adds to the
// API (ServiceNow's business-rule script): GET
// /v1/connections/{id}/<Path>, authenticated and scoped to the caller's
// organization like the rest (another organization's connection is a 404).
// Get sees only a connection of the caller; an error wrapping
// store.ErrNotFound answers 404, and its answer is rendered as JSON.
type ConnectionEndpoint struct {
	Path string
	Get  func(ctx context.Context, conn *store.Connection) (any, error)
}

// SyncRequester starts an on-demand sync of a connection.
type SyncRequester interface {
	RequestSync(ctx context.Context, connectionID string, kind store.SyncKind) error
}

// MountConnections adds the connections API and the OAuth consent pages.
func (s *Server) MountConnections(svc ConnectionService, syncs SyncRequester) {
	s.syncs = syncs
	g := s.echo.Group("/v1/connections", s.requireAPIKey)
	for _, ep := range s.cfg.ConnectionEndpoints {
		g.GET("/:id/"+strings.Trim(ep.Path, "/"), func(c echo.Context) error {
			if err := onlyParams(c); err != nil {
				return err
			}
			conn, err := svc.Get(c.Request().Context(), OrganizationID(c), c.Param("id"))
			if err != nil {
				return err
			}
			if conn.State == store.StateDeleted {
				return fail(http.StatusNotFound, "not_found", "no such connection")
			}
			out, err := ep.Get(c.Request().Context(), conn)
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, out)
		})
	}
	g.POST("", func(c echo.Context) error {
		if err := onlyParams(c); err != nil {
			return err
		}
		body, err := readBody(c)
		if err != nil {
			return err
		}
		req, err := connections.ParseCreate(body)
		if err != nil {
			return err
		}
		if err := s.checkOptions(&req.Options); err != nil {
			return err
		}
		if err := s.checkConnectionQuota(c.Request().Context(), OrganizationID(c)); err != nil {
			return err
		}
		conn, url, err := svc.Create(c.Request().Context(), OrganizationID(c), req)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, connections.NewView(conn, url))
	})
	g.GET("", s.listConnections)
	g.GET("/:id", func(c echo.Context) error {
		if err := onlyParams(c); err != nil {
			return err
		}
		conn, err := svc.Get(c.Request().Context(), OrganizationID(c), c.Param("id"))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, connections.NewView(conn, ""))
	})
	g.PATCH("/:id", func(c echo.Context) error {
		if err := onlyParams(c); err != nil {
			return err
		}
		body, err := readBody(c)
		if err != nil {
			return err
		}
		var req connections.PatchRequest
		if err := connections.DecodeStrict(body, &req); err != nil {
			return err
		}
		if err := s.checkOptions(req.Options); err != nil {
			return err
		}
		conn, err := svc.Patch(c.Request().Context(), OrganizationID(c), c.Param("id"), req)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, connections.NewView(conn, ""))
	})
	g.DELETE("/:id", func(c echo.Context) error {
		if err := onlyParams(c, "purge"); err != nil {
			return err
		}
		purge := false
		if v := c.QueryParam("purge"); v != "" {
			var err error
			if purge, err = strconv.ParseBool(v); err != nil {
				return fail(http.StatusBadRequest, "invalid", "purge: want true or false")
			}
		}
		if err := svc.Delete(c.Request().Context(), OrganizationID(c), c.Param("id"), purge); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
	g.GET("/:id/mappings", func(c echo.Context) error {
		report, err := svc.Mappings(c.Request().Context(), OrganizationID(c), c.Param("id"))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, report)
	})
	g.POST("/:id/authorize", func(c echo.Context) error {
		if err := onlyParams(c); err != nil {
			return err
		}
		url, err := svc.Authorize(c.Request().Context(), OrganizationID(c), c.Param("id"))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]string{"oauth2_authorize_url": url})
	})
	g.POST("/:id/test", func(c echo.Context) error {
		if err := onlyParams(c); err != nil {
			return err
		}
		body, err := readBody(c)
		if err != nil {
			return err
		}
		var req connections.TestRequest
		if len(bytes.TrimSpace(body)) > 0 {
			if err := connections.DecodeStrict(body, &req); err != nil {
				return err
			}
		}
		conn, err := svc.Test(c.Request().Context(), OrganizationID(c), c.Param("id"), req)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, connections.NewView(conn, ""))
	})
	g.POST("/:id/sync", func(c echo.Context) error {
		if err := onlyParams(c, "kind"); err != nil {
			return err
		}
		conn, err := svc.Get(c.Request().Context(), OrganizationID(c), c.Param("id"))
		if err != nil {
			return err
		}
		if conn.State != store.StateActive {
			return fail(http.StatusConflict, "not_active", "the connection is "+string(conn.State)+"; only ACTIVE connections sync")
		}
		kind := store.SyncKind(c.QueryParam("kind"))
		if kind == "" {
			kind = store.SyncFull
		}
		if !kind.Valid() {
			return fail(http.StatusBadRequest, "invalid", "kind: want full or incremental")
		}
		if syncs == nil {
			return fail(http.StatusServiceUnavailable, "unavailable", "no backfill worker is configured")
		}
		if err := syncs.RequestSync(c.Request().Context(), conn.ID, kind); err != nil {
			return err
		}
		return c.JSON(http.StatusAccepted, map[string]string{"status": "requested", "kind": string(kind)})
	})
	s.mountConsent(svc)
}

// A connection's view is up to the API body limit in size, far larger than
// a ticket's, so its pages are shorter than the read API's.
const (
	defaultConnectionPage = 50
	maxConnectionPage     = 100
)

// listConnections pages the organization's connections like the other
// lists: a cursor and a bounded limit, so no call holds them all.
func (s *Server) listConnections(c echo.Context) error {
	if err := onlyParams(c, "cursor", "limit"); err != nil {
		return err
	}
	q := store.ConnectionPageQuery{OrganizationID: OrganizationID(c), Cursor: c.QueryParam("cursor"), Limit: defaultConnectionPage}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxConnectionPage {
			return fail(http.StatusBadRequest, "invalid_query", "limit: want an integer from 1 to "+strconv.Itoa(maxConnectionPage))
		}
		q.Limit = n
	}
	page, err := s.store.PageConnections(c.Request().Context(), q)
	if errors.Is(err, store.ErrInvalid) {
		return fail(http.StatusBadRequest, "invalid_cursor", "cursor: malformed or from another query")
	}
	if err != nil {
		return err
	}
	resp := struct {
		Items      []connections.View `json:"items"`
		NextCursor *string            `json:"next_cursor"`
	}{Items: make([]connections.View, 0, len(page.Connections))}
	for _, conn := range page.Connections {
		resp.Items = append(resp.Items, connections.NewView(conn, ""))
	}
	if page.NextCursor != "" {
		resp.NextCursor = &page.NextCursor
	}
	return c.JSON(http.StatusOK, resp)
}

func readBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxAPIBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, fail(http.StatusRequestEntityTooLarge, "too_large", "body exceeds 64 KiB")
	}
	if err != nil {
		return nil, fail(http.StatusBadRequest, "unreadable", "could not read the body")
	}
	return b, nil
}
