package app_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app"
)

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer bad.Close()
	require.Equal(t, 0, app.Healthcheck(ok.URL, io.Discard))
	require.Equal(t, 1, app.Healthcheck(bad.URL, io.Discard))
	require.Equal(t, 1, app.Healthcheck("http://127.0.0.1:1/healthz", io.Discard))
	// With no URL the probe derives it from ITSM_HTTP_ADDR, mapping a
	// wildcard host to loopback.
	t.Setenv("ITSM_HTTP_ADDR", "0.0.0.0:"+strconv.Itoa(ok.Listener.Addr().(*net.TCPAddr).Port))
	require.Equal(t, 0, app.Healthcheck("", io.Discard))
}
