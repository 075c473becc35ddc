package receiver

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// maxAPIBody bounds every API request's body: the largest, a connection
// with its options at their quotas, is far smaller.
const maxAPIBody = 64 << 10

// edge applies what every answer and every API request gets: headers that
// keep browsers and proxies from sniffing or caching answers (they carry a
// tenant's data), and, outside the webhook path (which bounds its own
// body), a bounded, uncompressed body and a query string parsed strictly.
func (s *Server) edge(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		req := c.Request()
		if strings.HasPrefix(req.URL.Path, "/webhooks/") {
			return next(c)
		}
		if ce := req.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
			return fail(http.StatusUnsupportedMediaType, "unsupported_encoding", "content encoding "+strconv.Quote(ce)+" is not accepted; send the body uncompressed")
		}
		if req.ContentLength > maxAPIBody {
			return fail(http.StatusRequestEntityTooLarge, "too_large", "body exceeds 64 KiB")
		}
		if req.Body != nil && req.Body != http.NoBody {
			req.Body = http.MaxBytesReader(c.Response(), req.Body, maxAPIBody)
		}
		if err := checkQuery(req.URL.RawQuery); err != nil {
			return err
		}
		return next(c)
	}
}
