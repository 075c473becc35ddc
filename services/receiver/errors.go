package receiver

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/store"
)

// apiError is the one shape of every error answer.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Message }

func fail(status int, code, msg string) error {
	return &apiError{Status: status, Code: code, Message: msg}
}

// errorHandler translates errors to HTTP once, at the edge. Only unexpected
// errors are logged, and their text never reaches the client.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *apiError
	var he *echo.HTTPError
	var ve *connections.ValidationError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &ve):
		ae = &apiError{Status: http.StatusBadRequest, Code: "invalid_" + fieldCode(ve.Field), Message: ve.Error()}
	case errors.Is(err, connections.ErrBadState):
		ae = &apiError{Status: http.StatusBadRequest, Code: "invalid_state", Message: "invalid, expired or already used OAuth state; start the authorization again"}
	case errors.Is(err, connections.ErrNotActive):
		ae = &apiError{Status: http.StatusConflict, Code: "not_active", Message: "the connection has no working grant yet; authorize it first"}
	case errors.Is(err, connections.ErrNoConsent):
		ae = &apiError{Status: http.StatusConflict, Code: "no_consent",
			Message: "the connection brings its own credentials and has no OAuth consent; replace them and test again with POST /v1/connections/{id}/test"}
	case errors.Is(err, connections.ErrNoTest):
		ae = &apiError{Status: http.StatusConflict, Code: "not_testable",
			Message: "the connection's vendor has no connection test; its OAuth consent tests the access (POST /v1/connections/{id}/authorize)"}
	case errors.Is(err, connections.ErrVendor):
		ae = &apiError{Status: http.StatusBadGateway, Code: "vendor_unavailable", Message: "the vendor did not answer as expected; try again later"}
	case errors.Is(err, store.ErrConflict):
		ae = &apiError{Status: http.StatusConflict, Code: "conflict", Message: "the resource changed concurrently; retry"}
	case errors.Is(err, store.ErrNotFound):
		ae = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
	case errors.Is(err, store.ErrInvalid):
		ae = &apiError{Status: http.StatusBadRequest, Code: "invalid", Message: err.Error()}
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		ae = &apiError{Status: he.Code, Code: "http", Message: msg}
	default:
		s.log.Error("request failed", zap.String("path", c.Path()), zap.Error(err))
		ae = &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	if err := c.JSON(ae.Status, map[string]any{"error": ae}); err != nil {
		s.log.Warn("writing error response", zap.Error(err))
	}
}

func fieldCode(field string) string {
	if field == "body" {
		return "body"
	}
	return "field"
}
