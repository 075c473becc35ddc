package app

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// mountHealth serves the probes of every process, in one shape:
// /healthz answers while the process runs; /readyz answers 200 while the
// store and NATS answer and no worker of the process failed, and 503 naming
// what does not. Both are bounded:
// an unreachable store must fail a probe within its timeout, not hang it.
func (p *Platform) mountHealth(e *echo.Echo, log *zap.Logger) {
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		problems := map[string]string{}
		if err := p.store.Ping(ctx); err != nil {
			problems["store"] = "unreachable"
			log.Warn("readiness: store", zap.Error(err))
		}
		if err := p.natsReady(); err != nil {
			problems["nats"] = "unreachable"
			log.Warn("readiness: nats", zap.Error(err))
		}
		for name := range p.sup.Failed() {
			problems[name] = "failed"
		}
		if len(problems) > 0 {
			return c.JSON(http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "problems": problems})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	})
}
