package connections

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// A token endpoint refusing the request is the connection's access; one
// failing or rate limiting is the vendor's trouble.
func TestClientRefusedOnlyByTheTokenEndpointsRefusals(t *testing.T) {
	at := func(status int) error {
		return fmt.Errorf("refresh: %w", &oauth2.RetrieveError{Response: &http.Response{StatusCode: status}})
	}
	for status, want := range map[int]bool{400: true, 401: true, 403: true, 429: false, 500: false, 503: false} {
		require.Equal(t, want, clientRefused(at(status)), "HTTP %d", status)
	}
	require.False(t, clientRefused(fmt.Errorf("dial: connection refused")), "no answer")
}
