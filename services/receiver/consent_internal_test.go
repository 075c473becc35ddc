package receiver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/connections"
)

func TestPublicEndpoints(t *testing.T) {
	for _, tc := range []struct {
		public, origin, path string
		secure               bool
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", "/oauth/confirm", false},
		{"https://itsm.example.com", "https://itsm.example.com", "/oauth/confirm", true},
		{"https://itsm.example.com:443/", "https://itsm.example.com", "/oauth/confirm", true},
		{"http://itsm.example.com:80", "http://itsm.example.com", "/oauth/confirm", false},
		{"https://[::1]:8443/itsm/", "https://[::1]:8443", "/itsm/oauth/confirm", true},
	} {
		origin, path, secure := publicEndpoints(tc.public)
		require.Equal(t, tc.origin, origin, tc.public)
		require.Equal(t, tc.path, path, tc.public)
		require.Equal(t, tc.secure, secure, tc.public)
	}
}

// A ServiceNow grant always covers the connection's own instance, so the
// wrong-site page cannot be reached with one end to end; its words come
// from the error's vendor, like the other refused steps'.
func TestConsentErrorPagesNameTheVendor(t *testing.T) {
	s := &Server{log: zap.NewNop()}
	render := func(err error) (int, string) {
		rec := httptest.NewRecorder()
		c := echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/oauth/confirm", nil), rec)
		require.NoError(t, s.consentError(c, err))
		return rec.Code, rec.Body.String()
	}
	for _, vendor := range []string{"ServiceNow", "Jira"} {
		other := map[string]string{"ServiceNow": "Jira", "Jira": "ServiceNow"}[vendor]
		for name, tc := range map[string]struct {
			err    error
			status int
			words  []string
		}{
			"wrong site": {&connections.SiteMismatchError{Vendor: vendor, Consented: []string{"https://other.example"}, Want: "https://want.example"},
				http.StatusConflict, []string{"Wrong " + vendor + " site", vendor + " granted access to https://other.example", vendor + "&#39;s consent screen"}},
			"expired": {&connections.VendorError{Vendor: vendor, Err: connections.ErrConsentExpired},
				http.StatusBadRequest, []string{"This confirmation has expired", "The access " + vendor + " granted was discarded"}},
			"vendor failed": {&connections.VendorError{Vendor: vendor, Err: errors.New("exchange code: HTTP 500")},
				http.StatusBadGateway, []string{"Completing the authorization with " + vendor + " failed"}},
		} {
			t.Run(vendor+" "+name, func(t *testing.T) {
				st, body := render(tc.err)
				require.Equal(t, tc.status, st, body)
				for _, w := range tc.words {
					require.Contains(t, body, w)
				}
				require.NotContains(t, body, other)
				require.NotContains(t, body, "https://want.example", "the declared site is not shown")
				require.NotContains(t, body, "HTTP 500", "no internal detail")
			})
		}
	}
	// Unknown vendor: neutral words.
	st, body := render(connections.ErrConsentExpired)
	require.Equal(t, http.StatusBadRequest, st)
	require.Contains(t, body, "The access the service granted was discarded")
	require.NotContains(t, body, "Jira")
}
